"""Drive the one-map application in Debian's headless Chromium (Python playwright, never a downloaded browser):
a page that records console errors, failed responses and any request to a host other than ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

ARGS = ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-gl=angle", "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader"]
CHROMIUM = "/usr/bin/chromium"
OURS = ("127.0.0.1", "localhost")


def launch(playwright):
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@dataclass
class Watched:
    """A page and what went wrong on it."""

    page: object
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    json: list[tuple[str, object]] = field(default_factory=list)

    def clean(self) -> bool:
        """No console error, no failed response, no request to another host."""
        return not (self.errors or self.failed or self.outside)


def watched_page(browser, *, keep_json: bool = False, viewport=(1280, 860)) -> Watched:
    """A new page in a fresh context, recording errors, failures, outside requests (aborted) and JSON answers."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    w = Watched(page)

    def route(r):
        host = urlsplit(r.request.url).hostname
        if host in OURS or r.request.url.startswith(("data:", "blob:")):
            return r.continue_()
        w.outside.append(r.request.url)
        return r.abort("blockedbyclient")

    context.route("**/*", route)
    page.on("console", lambda m: w.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(str(e)))

    def response(res):
        if res.status >= 400:
            w.failed.append(f"{res.status} {res.url}")
        elif keep_json and "json" in (res.headers.get("content-type") or ""):
            try:
                w.json.append((res.url, res.json()))
            except Exception:  # a stream or an aborted body
                pass

    page.on("response", response)
    return w


def wait_idle(page, timeout: float = 90_000) -> None:
    """Until MapLibre has drawn everything it asked for (its `idle` event), never a fixed sleep."""
    page.wait_for_function("window.__ready === true", timeout=timeout)
    page.evaluate("""() => new Promise((done) => {
        const map = window.__map;
        if (map.loaded() && map.areTilesLoaded() && !map.isMoving()) { map.once('idle', done); map.triggerRepaint(); }
        else map.once('idle', done);
    })""")


def log_in(page, base: str, username: str, password: str = "onemap") -> None:
    """Log in through the page's own form, as a person (or a password manager) would."""
    page.goto(f"{base}/viewer/")
    page.wait_for_function("window.__ready !== undefined", timeout=90_000)
    page.fill('#login input[name="username"][autocomplete="username"]', username)
    page.fill('#login input[name="password"][autocomplete="current-password"]', password)
    with page.expect_navigation():
        page.click('#login button[type="submit"]')
    wait_idle(page)
