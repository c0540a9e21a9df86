"""From a reading's MQTT publish to its alarm on a subscriber's /stream: readings past the smoke threshold
published with QoS 1 at a steady rate to a private Mosquitto, consumed by one onemap server process (the MQTT
job) on a scratch PostGIS database, alarms raised or repeated by the rules in the readings' transaction, and
pushed to SUBSCRIBERS SSE clients of /stream?layers=alarms on a second server process (through the change log,
as in production). A few subscribers time every alarm; the others read and discard.

Not a test. Prints the rate sustained and p50/p99 of publish -> alarm arrival, and of publish -> stored.

    .venv/bin/python bench/alarms/mqtt_latency.py [--rate 1000] [--seconds 60] [--subscribers 200] \
        [--server postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from shapely.geometry import MultiPolygon, Point, box

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geoserver.access import Scope  # noqa: E402
from geoserver.features import Feature  # noqa: E402
from geoserver.passwords import hash_password  # noqa: E402
from geoserver.store import UserRecord, open_store  # noqa: E402
from layers import alarm_rules  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from layers.event_types import seed_defaults  # noqa: E402
from tests.e2e.live_server import free_port  # noqa: E402

SECRET = "bench-mqtt-secret-of-at-least-32-bytes"
SITES = 1000
TIMED = 5  # subscribers that time every alarm


def scratch(server: str) -> str:
    """A new PostGIS database: a township, a grid, SITES smoke sensors, the default rules and an operator."""
    name = f"onemap_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    with open_store(url, build_catalog()) as store:
        store.initialize()
        seed_defaults(store)
        alarm_rules.seed_defaults(store)
        store.bulk_load("townships", [Feature(None, MultiPolygon([box(100, 33, 101, 34)]), {
            "township_code": "T", "name": "T", "kind": "township"})])
        store.bulk_load("grids", [Feature(None, MultiPolygon([box(100, 33, 101, 34)]), {
            "grid_code": "T1", "township_code": "T", "name": "T1", "grid_kind": "basic"})])
        store.insert("monitoring_sites", [Feature(None, Point(100 + i / 2000, 33.5), {
            "site_code": f"S{i}", "kind": "smoke", "status": "online"}) for i in range(SITES)], Scope.everything())
        store.put_users([UserRecord("operator", "operator", hash_password("onemap"))])
    return url


def broker(folder: Path) -> tuple[subprocess.Popen, int]:
    """A private Mosquitto with persistence as a county would run it (saved every 30 s and on exit)."""
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {os.environ.get('USER', 'root')}\n"
                    f"persistence true\npersistence_location {folder}/\nautosave_interval 30\n"
                    "max_queued_messages 0\nlog_dest none\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)])
    time.sleep(0.5)
    return proc, port


def serve(database: str, mqtt_url: str | None, jobs: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ONEMAP_SECRET": SECRET, "ONEMAP_JOBS": "1" if jobs else "0",
           "ONEMAP_STREAM_HEARTBEAT": "5"}
    if mqtt_url:
        env["ONEMAP_MQTT_URL"] = mqtt_url
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--database", database, "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


async def subscribe(base: str, headers: dict, arrivals: dict[int, float] | None, ready: list[int],
                    stop: asyncio.Event) -> None:
    """One SSE client of the alarms; with `arrivals`, when each alarm change arrived, per site in order (every
    reading past the limit raises or repeats its site's alarm: the n-th change of a site is its n-th reading)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        async with client.stream("GET", f"{base}/stream?layers=alarms",
                                 headers={**headers, "Accept": "text/event-stream"}) as response:
            ready.append(response.status_code)
            if arrivals is None:
                async for _ in response.aiter_raw():
                    if stop.is_set():
                        return
                return
            async for line in response.aiter_lines():
                if stop.is_set():
                    return
                if line.startswith("data:"):
                    at = time.time()
                    data = json.loads(line[5:])
                    site = (data.get("properties") or {}).get("site_id")
                    if data.get("layer") == "alarms" and site is not None:
                        arrivals.setdefault(site, []).append(at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--rate", type=int, default=1000, help="readings per second")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--subscribers", type=int, default=200)
    args = parser.parse_args()
    url = scratch(args.server)
    folder = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    mosquitto, port = broker(folder)
    consumer, base_c = serve(url, f"mqtt://127.0.0.1:{port}", jobs=True)
    streamer, base_s = serve(url, None, jobs=False)
    try:
        headers = {"Authorization": "Bearer " + httpx.post(f"{base_s}/auth/token", data={
            "username": "operator", "password": "onemap"}).json()["access_token"]}
        with psycopg.connect(url) as conn:
            sites = [r[0] for r in conn.execute("SELECT fid FROM monitoring_sites ORDER BY fid")]
        sent: dict[int, float] = {}
        timed = min(TIMED, args.subscribers)
        arrivals: list[dict[int, float]] = [{} for _ in range(timed)]
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        ready: list[int] = []

        async def all_subscribers():
            await asyncio.gather(*(subscribe(base_s, headers, arrivals[i] if i < timed else None, ready, stop)
                                   for i in range(args.subscribers)), return_exceptions=True)

        listening = threading.Thread(target=lambda: loop.run_until_complete(all_subscribers()), daemon=True)
        listening.start()
        while len(ready) < args.subscribers:
            time.sleep(0.1)
        if set(ready) != {200}:
            raise SystemExit(f"/stream answered {sorted(set(ready))}")
        time.sleep(3)  # the consumer has connected (its job runs every 2 s)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}",
                             protocol=mqtt.MQTTv5)
        device.max_inflight_messages_set(1000)
        device.max_queued_messages_set(0)
        device.connect("127.0.0.1", port)
        device.loop_start()
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        total = args.rate * args.seconds
        counted: list[tuple[float, int]] = []  # (time.time(), readings stored), polled every 0.1 s
        counting = threading.Event()

        def count_stored() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                while not counting.is_set():
                    counted.append((time.time(), conn.execute("SELECT count(*) FROM readings").fetchone()[0]))
                    if counted[-1][1] >= total:
                        return
                    time.sleep(0.1)

        counter = threading.Thread(target=count_stored, daemon=True)
        counter.start()
        published = time.time()
        started = time.perf_counter()
        for i in range(total):
            due = started + i / args.rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            marker = 200_000 + i  # value 0.2 + i/1e6: past the 0.15 threshold, unique per reading
            site = sites[i % len(sites)]
            at = (t0 + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")
            sent.setdefault(site, []).append(time.time())
            device.publish(f"onemap/sites/{site}/readings", json.dumps({
                "metric": "smoke_density", "value": marker / 1e6, "unit": "%obs/m", "observed_at": at}), qos=1)
        publishing = time.perf_counter() - started
        deadline = time.time() + 120
        def got() -> int:
            return min(sum(len(v) for v in a.values()) for a in arrivals)

        while time.time() < deadline and got() < total:
            time.sleep(0.5)
        loop.call_soon_threadsafe(stop.set)
        counting.set()
        counter.join()
        latencies = sorted((t - p) * 1000 for a in arrivals for site, times in a.items()
                           for p, t in zip(sent.get(site, []), times, strict=False))
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        print(f"published {total:,} readings in {publishing:.1f} s ({total / publishing:,.0f}/s) to "
              f"{len(sites)} sites; {args.subscribers} SSE subscribers on a second process; "
              f"stored {stored:,}; alarms timed on {timed} subscribers, each got {got():,} of {total:,}")
        # The readings are stored about in the order sent: the i-th is stored once the count passes i.
        stored_at = iter(counted)
        lags = []
        mark = next(stored_at, None)
        for i in range(0, total, max(1, total // 1000)):
            while mark is not None and mark[1] <= i:
                mark = next(stored_at, None)
            if mark is None:
                break
            lags.append((mark[0] - (published + i / args.rate)) * 1000)
        done = next((t for t, n in counted if n >= total), None)
        in_window = max((n for t, n in counted if t <= published + publishing), default=0)
        print(f"consumer: {in_window:,} stored while publishing ({in_window / publishing:,.0f}/s); all "
              + (f"{total:,} stored {done - published:.1f} s after the first publish" if done else "not stored"))
        if lags:
            q = statistics.quantiles(sorted(lags), n=100)
            print(f"publish -> stored (count polled every 0.1 s): p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms")
        if latencies:
            q = statistics.quantiles(latencies, n=100)
            print(f"publish -> alarm at a subscriber: p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms, "
                  f"max {latencies[-1]:.0f} ms")
        device.loop_stop()

    finally:
        for proc in (consumer, streamer, mosquitto):
            proc.terminate()
            proc.wait()
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
