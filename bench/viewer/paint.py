"""First meaningful paint of /viewer/ in headless Chromium with a warm server: navigation start to the first
MapLibre `idle` (style, base map, every visible layer's tiles and labels drawn), and the browser's own first
contentful paint. Not a test: prints one JSON line per run and a summary.

    .venv/bin/python -m bench.viewer.paint --database data/sample/county.gpkg --runs 5 [--alarms 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx
from playwright.sync_api import sync_playwright

from api.app import create_app
from api.settings import Settings
from tests.e2e.live_server import live_server
from tests.e2e.viewer_browser import launch

MEASURE = """() => ({
  idle: window.__firstIdle,
  fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
  requests: performance.getEntriesByType('resource').length,
  bytes: performance.getEntriesByType('resource').reduce((a, r) => a + (r.transferSize || 0), 0),
})"""


def run(base: str, username: str | None, runs: int) -> list[dict]:
    """Open the page `runs` times (each in a fresh browser context: no browser cache) and measure."""
    token = None
    if username:
        token = httpx.post(f"{base}/auth/token", data={"username": username, "password": "onemap"}).json()["access_token"]
    out = []
    with sync_playwright() as p:
        browser = launch(p)
        for i in range(runs + 1):  # the first run warms the server's caches and is not counted
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            seen: list[str] = []  # every request, the map's worker's tiles included (the page's entries miss those)
            page.on("request", lambda r, seen=seen: seen.append(r.url))
            page.goto(f"{base}/viewer/" + (f"#token={token}" if token else ""))
            page.wait_for_function("window.__ready === true", timeout=120_000)
            m = page.evaluate(MEASURE)
            m["all_requests"] = len(seen)
            m["tile_requests"] = sum("/tiles/" in u for u in seen)
            context.close()
            if i:
                out.append(m)
                print(json.dumps({"user": username or "anonymous", **m}))
        browser.close()
    return out


def alarm_delay(base: str, runs: int) -> list[float]:
    """Seconds from POST /readings (a smoke reading past its limit) to the alarm's arrival on an open page."""
    op = {"Authorization": "Bearer " + httpx.post(f"{base}/auth/token", data={"username": "operator", "password": "onemap"}).json()["access_token"]}
    # Sites with an open alarm raise no new one (the rule updates that alarm): take smoke sites without one.
    busy = {f["properties"]["site_id"] for f in httpx.get(
        f"{base}/collections/alarms/items", headers=op, params={
            "filter": "status IN ('raised','acknowledged')", "properties": "site_id", "skipGeometry": "true",
            "limit": 10000}).json()["features"]}
    sites = [f for f in httpx.get(f"{base}/collections/monitoring_sites/items", params={"kind": "smoke", "limit": 1000},
                                  headers=op).json()["features"] if f["id"] not in busy][:runs]
    delays = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context().new_page()
        page.goto(f"{base}/viewer/#token={op['Authorization'][7:]}")
        page.wait_for_function("window.__streamReady === true", timeout=120_000)
        for site in sites:
            before = page.evaluate("window.__lastAlarm ? window.__lastAlarm.seq : 0")
            sent = time.time()
            httpx.post(f"{base}/readings", headers=op, json={"readings": [{
                "site_id": site["id"], "metric": "smoke_density", "value": 0.9, "unit": "%obs/m",
                "observed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]})
            page.wait_for_function(f"window.__lastAlarm && window.__lastAlarm.seq > {before}", timeout=60_000)
            delays.append(page.evaluate("window.__lastAlarm.receivedAt") / 1000 - sent)
        browser.close()
    return delays


def main() -> None:
    """Measure and summarise."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", required=True)
    ap.add_argument("--sample-dir", default="data/sample")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--alarms", type=int, default=0, help="also time this many alarms from POST to the page "
                    "(writes readings: use a copy of the sample)")
    args = ap.parse_args()
    started = time.time()
    with live_server(create_app(Settings(database=args.database, sample_dir=args.sample_dir, jobs=False))) as base:
        for user in (None, "operator", "leader-632626100"):
            ms = run(base, user, args.runs)
            idle = [m["idle"] for m in ms]
            print(json.dumps({"user": user or "anonymous", "runs": len(ms), "idle_median_ms": round(statistics.median(idle)),
                              "idle_max_ms": round(max(idle)),
                              "fcp_median_ms": round(statistics.median(m["fcp"] for m in ms if m["fcp"])),
                              "requests": ms[-1]["all_requests"], "tile_requests": ms[-1]["tile_requests"],
                              "page_kb": round(ms[-1]["bytes"] / 1024)}))
        if args.alarms:
            d = alarm_delay(base, args.alarms)
            print(json.dumps({"alarm_to_page_median_s": round(statistics.median(d), 3), "max_s": round(max(d), 3),
                              "runs": len(d)}))
    print(json.dumps({"seconds": round(time.time() - started, 1)}))


if __name__ == "__main__":
    main()
