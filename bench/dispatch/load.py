"""A bench database for the dispatch centre: the sample county's townships and grids, the default event types,
51 operator accounts, and a million synthetic events generated inside PostgreSQL (generate_series, one
INSERT ... SELECT) -- minutes, where generating the large sample took over 100.

Not a test. The events look like the county's: points inside real grids (40 per grid, ST_GeneratePoints),
the twelve types with their deadlines, a year of reports, recent ones still open, the rest closed (most on
time), rejected or merged.

    .venv/bin/python bench/dispatch/load.py --source postgresql://postgres@127.0.0.1:5432/onemap_tasks \
        --target postgresql://postgres@127.0.0.1:5432/onemap_dispatch_bench --events 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geoserver.passwords import hash_password  # noqa: E402
from geoserver.store import UserRecord, open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from layers.event_types import seed_defaults  # noqa: E402

OPERATORS = 50
POINTS_PER_GRID = 40

# One row per event, every random draw a column, so each draw is independent. Recent reports (the last ten
# days) are spread over the open states; older ones are closed (93 %), rejected (5 %) or merged (2 %).
EVENTS_SQL = """
WITH kinds AS (SELECT array_agg(code ORDER BY code) AS codes, array_agg(deadline_hours ORDER BY code) AS hours
               FROM event_types),
     draws AS (SELECT n, random() AS rp, random() AS rt, random() AS rs, random() AS rk, random() AS rh,
                      random() AS rpr, random() AS rsrc, floor(random() * %(points)s)::int AS pt
               FROM generate_series(1, %(events)s) AS n),
     rows_ AS (
       SELECT d.*, p.geom, p.grid_code, p.township_code,
              k.codes[1 + floor(d.rk * array_length(k.codes, 1))::int] AS kind,
              k.hours[1 + floor(d.rk * array_length(k.codes, 1))::int] AS hours,
              %(now)s::timestamptz - d.rt * interval '365 days' AS reported_at,
              CASE WHEN d.rt * 365 < 10 THEN
                     (ARRAY['reported', 'accepted', 'dispatched', 'in_progress', 'handled', 'verified', 'closed',
                            'rejected'])[1 + floor(d.rs * 8)::int]
                   WHEN d.rs < 0.93 THEN 'closed' WHEN d.rs < 0.98 THEN 'rejected' ELSE 'merged' END AS status
       FROM draws d JOIN bench_points p ON p.i = d.pt, kinds k)
INSERT INTO events (geom, event_code, title, type, source, status, priority, reported_at, deadline, closed_at,
                    reporter, assignee, township_code, grid_code, escalation_level, due_state)
SELECT geom, 'E' || lpad(n::text, 8, '0'), kind || ' #' || n, kind,
       (ARRAY['grid_worker', 'citizen', 'sensor', 'hotline', 'inspection'])[1 + floor(rsrc * 5)::int],
       status, (ARRAY['low', 'normal', 'normal', 'high', 'urgent'])[1 + floor(rpr * 5)::int],
       reported_at, reported_at + hours * interval '1 hour',
       CASE WHEN status = 'closed' THEN reported_at + hours * (0.1 + rh * 1.3) * interval '1 hour'
            WHEN status IN ('rejected', 'merged') THEN reported_at + rh * interval '24 hours' END,
       'worker-' || grid_code,
       CASE WHEN status NOT IN ('reported', 'accepted', 'rejected', 'merged') THEN 'worker-' || grid_code END,
       township_code, grid_code, CASE WHEN rh > 0.9 THEN 1 ELSE 0 END,
       CASE WHEN status NOT IN ('closed', 'rejected', 'merged')
                 AND reported_at + hours * interval '1 hour' < %(now)s::timestamptz THEN 'overdue' END
FROM rows_
"""


def _server(url: str) -> tuple[str, str]:
    server, _, name = url.rpartition("/")
    return server, name


def create(target: str) -> None:
    """A new, empty database with PostGIS and the onemap schema (dropped first if it exists)."""
    server, name = _server(target)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    with open_store(target, build_catalog()) as store:
        store.initialize()
        seed_defaults(store)  # the twelve event types a county starts with
        password = hash_password("onemap")  # one hash: every bench account has the same password
        store.put_users([UserRecord("operator", "operator", password)] + [
            UserRecord(f"bench-op-{i:02d}", "operator", password) for i in range(OPERATORS)])


def copy_areas(source: str, target: str) -> None:
    """The sample county's townships and grids, copied as they are (binary COPY between the databases)."""
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        for table in ("townships", "grids"):
            with src.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as out, \
                    dst.cursor().copy(f"COPY {table} FROM STDIN (FORMAT binary)") as into:
                for chunk in out:
                    into.write(chunk)
        dst.commit()


def generate(target: str, events: int, now: str) -> None:
    """`events` synthetic events in one INSERT ... SELECT, then ANALYZE."""
    with psycopg.connect(target) as conn:
        conn.execute("SELECT setseed(0.2026)")
        conn.execute(f"""CREATE TEMP TABLE bench_points AS
            SELECT (row_number() OVER (ORDER BY grid_code, path) - 1)::int AS i, grid_code, township_code, geom
            FROM (SELECT g.grid_code, g.township_code, (d).path, (d).geom
                  FROM grids g, LATERAL ST_Dump(ST_GeneratePoints(g.geom, {POINTS_PER_GRID}, 2026)) AS d) AS s""")
        conn.execute("CREATE INDEX ON bench_points (i)")
        (points,) = conn.execute("SELECT count(*) FROM bench_points").fetchone()
        conn.execute(EVENTS_SQL, {"events": events, "points": points, "now": now})
        conn.commit()
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")  # statistics and the visibility map, as autovacuum keeps them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="a database holding the sample county")
    parser.add_argument("--target", default="postgresql://postgres@127.0.0.1:5432/onemap_dispatch_bench")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--now", default="2026-11-01T04:00:00Z", help="the newest report is just before this")
    args = parser.parse_args()
    started = time.perf_counter()
    create(args.target)
    copy_areas(args.source, args.target)
    areas = time.perf_counter()
    generate(args.target, args.events, args.now)
    done = time.perf_counter()
    print(f"schema + areas {areas - started:.1f} s, {args.events:,} events {done - areas:.1f} s, "
          f"total {done - started:.1f} s")


if __name__ == "__main__":
    main()
