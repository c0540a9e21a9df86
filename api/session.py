"""The browser session: our access token in an HttpOnly cookie, honoured on safe methods only (CSRF-safe).

A cross-site page can make a browser send our cookie with a form POST; it can never make it send an
`Authorization` header. So the cookie identifies the person for GET/HEAD (pages, tiles, JSON a page reads) and
is ignored on every write: a write needs a bearer token, an API key or Basic credentials, as before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

from api.settings import Settings

COOKIE = "onemap_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The request headers that say who the caller is: every answer that depends on the caller varies on them, so
# no cache (a browser's included) hands one person's tile to the next one logged in on the same machine.
VARY_CALLER = "Authorization, X-API-Key, Cookie"


def session_token(request: Request) -> str | None:
    """The token in the session cookie, or None when there is none or the request is a write."""
    if request.method not in SAFE_METHODS:
        return None
    return request.cookies.get(COOKIE) or None


def _secure(request: Request, settings: Settings) -> bool:
    """Secure when the browser reaches us over https (directly, or through the configured public URL)."""
    return request.url.scheme == "https" or (settings.public_url or "").startswith("https://")


def set_session(response: Response, request: Request, settings: Settings, token: str, lifetime: int) -> None:
    """Give the browser its session cookie: HttpOnly, SameSite=Lax, Secure over https, as long as the token."""
    response.set_cookie(COOKIE, token, max_age=lifetime, path="/", httponly=True, samesite="lax",
                        secure=_secure(request, settings))


def clear_session(response: Response, request: Request, settings: Settings) -> None:
    """Make the browser forget its session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request, settings))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, settings: Settings) -> bool:
    """Whether a form post comes from our own pages (Origin, else Sec-Fetch-Site; neither sent: allowed)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        ours = {_origin(str(request.base_url))}
        if settings.public_url:
            ours.add(_origin(settings.public_url))
        return origin.lower().rstrip("/") in ours
    if origin == "null":  # sandboxed frames and some redirects: not provably ours
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path on this server only (never another site)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n"):
        return "/"
    return value
