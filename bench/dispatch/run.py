"""Dispatch at scale on PostGIS: (1) 50 operators acting at once, each on events of its own, over HTTP --
actions per second and p50/p99 latency -- beside the same transitions in raw SQL (row lock, update, timeline row,
change-log row; no HTTP, no checks); (2) `GET /stats/events` on the bench database's million events beside the
raw SQL of its three statements.

Not a test. Load the database first with bench/dispatch/load.py. One onemap server process (jobs off).

    .venv/bin/python bench/dispatch/run.py --database postgresql://postgres@127.0.0.1:5432/onemap_dispatch_bench
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "live"))

from extents import serve, token  # noqa: E402

from geoserver.passwords import hash_password  # noqa: E402
from geoserver.store import UserRecord, open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from layers.dispatch import OPEN  # noqa: E402

# What an operator does to an event he dispatches to himself: every action but the side branches.
STEPS = (("accept", "accepted"), ("dispatch", "dispatched"), ("start", "in_progress"), ("handle", "handled"),
         ("verify", "verified"), ("close", "closed"))


def fresh_events(database: str, count: int, title: str) -> list[int]:
    """`count` new reported events (copies of closed ones: real places, types and grids)."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "INSERT INTO events (geom, title, type, source, status, priority, reported_at, deadline, reporter, "
            "township_code, grid_code) SELECT geom, %s, type, 'grid_worker', 'reported', 'normal', now(), "
            "now() + interval '3 days', reporter, township_code, grid_code FROM events WHERE status = 'closed' "
            "ORDER BY fid LIMIT %s RETURNING fid", (title, count)).fetchall()
    return [r[0] for r in rows]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(name: str, latencies: list[float], seconds: float) -> str:
    """One table row: actions, actions/s, p50 and p99 ms."""
    return (f"| {name} | {len(latencies)} | {len(latencies) / seconds:.1f} | {percentile(latencies, 0.5):.1f} | "
            f"{percentile(latencies, 0.99):.1f} | {max(latencies):.1f} |")


def http_actions(base: str, operators: list[str], events: list[list[int]]) -> tuple[list[float], float]:
    """Each operator walks his own events through STEPS over HTTP, all operators at once."""
    headers = {name: token(base, name) for name in operators}
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(operators))

    def work(name: str, mine: list[int]) -> None:
        mine_ms = []
        with httpx.Client(base_url=base, headers=headers[name], timeout=60) as client:
            start.wait()
            for fid in mine:
                for action, status in STEPS:
                    body = {"assignee": name} if action == "dispatch" else {}
                    t = time.perf_counter()
                    r = client.post(f"/events/{fid}/actions/{action}", json=body)
                    mine_ms.append((time.perf_counter() - t) * 1000)
                    if r.status_code != 200 or r.json()["properties"]["status"] != status:
                        raise SystemExit(f"{name} {action} {fid}: {r.status_code} {r.text[:200]}")
        with lock:
            latencies.extend(mine_ms)

    began = time.perf_counter()
    with ThreadPoolExecutor(len(operators)) as pool:
        list(pool.map(work, operators, events))
    return latencies, time.perf_counter() - began


def raw_actions(database: str, operators: list[str], events: list[list[int]]) -> tuple[list[float], float]:
    """The same transitions in raw SQL, one connection per operator: the limit under the HTTP numbers."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(operators))

    def work(name: str, mine: list[int]) -> None:
        mine_ms = []
        with psycopg.connect(database) as conn:
            start.wait()
            for fid in mine:
                for action, status in STEPS:
                    t = time.perf_counter()
                    with conn.transaction():
                        before, town = conn.execute("SELECT status, township_code FROM events WHERE fid = %s "
                                                    "FOR UPDATE", (fid,)).fetchone()
                        conn.execute("UPDATE events SET status = %s, assignee = coalesce(%s, assignee) WHERE fid = %s",
                                     (status, name if action == "dispatch" else None, fid))
                        conn.execute("INSERT INTO event_timeline (event_id, at, actor, action, from_status, "
                                     "to_status) VALUES (%s, now(), %s, %s, %s, %s)", (fid, name, action, before,
                                                                                       status))
                        conn.execute("INSERT INTO changes (layer, fid, op, township_before, township_after, "
                                     "properties, actor) VALUES ('events', %s, 'update', %s, %s, "
                                     "jsonb_build_object('status', %s::text), %s)", (fid, town, town, status, name))
                    mine_ms.append((time.perf_counter() - t) * 1000)
        with lock:
            latencies.extend(mine_ms)

    began = time.perf_counter()
    with ThreadPoolExecutor(len(operators)) as pool:
        list(pool.map(work, operators, events))
    return latencies, time.perf_counter() - began


STATS_SQL = (  # {scope}: TRUE, or the leader's township
    "SELECT township_code, status, count(*) FROM events WHERE {scope} GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT count(*) FROM events WHERE {scope} AND status = ANY(%(open)s) AND (deadline < now() "
    "OR due_state = 'overdue')",
    "SELECT count(*), coalesce(sum(ok), 0), percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY h) FROM ("
    "SELECT date_part('epoch', closed_at - reported_at) / 3600.0 AS h, CASE WHEN closed_at <= deadline THEN 1 "
    "ELSE 0 END AS ok FROM events WHERE {scope} AND status = 'closed' AND reported_at IS NOT NULL "
    "AND closed_at IS NOT NULL) d",
)


def timed_get(client: httpx.Client, url: str, headers: dict, n: int) -> list[float]:
    """Milliseconds of n GETs after one warm-up."""
    client.get(url, headers=headers).raise_for_status()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.get(url, headers=headers, timeout=120).raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
    return out


def raw_stats(database: str, n: int, township: str | None) -> list[float]:
    """Milliseconds of the three statements /stats/events runs, in raw SQL (one township's, if given)."""
    scoped = [s.format(scope="township_code = %(town)s" if township else "TRUE") for s in STATS_SQL]
    out = []
    with psycopg.connect(database) as conn:
        for i in range(n + 1):
            t = time.perf_counter()
            for sql in scoped:
                conn.execute(sql, {"open": list(OPEN), "town": township}).fetchall()
            if i:
                out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/onemap_dispatch_bench")
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--events-per-operator", type=int, default=6)
    parser.add_argument("--stats-requests", type=int, default=7)
    args = parser.parse_args()
    operators = [f"bench-op-{i:02d}" for i in range(args.operators)]
    per = args.events_per_operator
    with open_store(args.database, build_catalog()) as store, psycopg.connect(args.database) as conn:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        (town,) = conn.execute("SELECT township_code FROM townships ORDER BY township_code LIMIT 1").fetchone()
        store.put_users([UserRecord("bench-leader", "leader", hash_password("onemap"), townships=(town,))])
    print(f"{count:,} events; {args.operators} operators x {per} events x {len(STEPS)} actions")
    proc, base = serve(args.database)
    try:
        ids = fresh_events(args.database, args.operators * per, "bench http action")
        latencies, seconds = http_actions(base, operators, [ids[i * per:(i + 1) * per] for i in range(args.operators)])
        print("| path | actions | actions/s | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
        print(summary("onemap HTTP (`POST /events/{id}/actions/{action}`)", latencies, seconds))
        ids = fresh_events(args.database, args.operators * per, "bench raw action")
        latencies, seconds = raw_actions(args.database, operators, [ids[i * per:(i + 1) * per]
                                                                    for i in range(args.operators)])
        print(summary("raw SQL (the limit)", latencies, seconds))
        print("\n| request | median ms | max ms | raw SQL median ms |\n|---|---|---|---|")
        with httpx.Client(base_url=base, timeout=120) as client:
            op, leader = token(base, "operator"), token(base, "bench-leader")
            for label, url, who, scope in (
                    ("operator, no grouping", "/stats/events", op, None),
                    ("operator, group_by=township_code,status", "/stats/events?group_by=township_code,status", op,
                     None),
                    (f"leader of {town}, group_by=township_code,status",
                     "/stats/events?group_by=township_code,status", leader, town)):
                ms = timed_get(client, url, who, args.stats_requests)
                raw = raw_stats(args.database, args.stats_requests, scope)
                print(f"| {label} | {statistics.median(ms):.0f} | {max(ms):.0f} | {statistics.median(raw):.0f} |")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
