"""What PostgreSQL spends on onemap's tile statements, per layer and zoom, with and without the Mercator copy.

Not a test. Reproduce (a database holding a sample county, migrated to 0019 or later):

    .venv/bin/python bench/tiles/sql_time.py --database postgresql://postgres@127.0.0.1:5432/onemap_tiles

The same 400 tiles as bench/tiles/run.py (buildings and events, z12-16). Every statement runs `--runs` times
on one connection with onemap's session settings; the table sums the fastest run of each tile's statement.
"With ST_Transform" is the statement of the same layer declared without `mercator_copy`, so the two columns
differ only in where the Web Mercator geometry comes from.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import LAYERS, tile_list  # noqa: E402

from geoserver.access import Scope  # noqa: E402
from geoserver.store.postgis import _configure  # noqa: E402
from geoserver.store.postgis_mvt import tile_sql  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from tiles.plan import TilePlan  # noqa: E402
from tiles.tms import get_tiling  # noqa: E402


def best(conn: psycopg.Connection, statement: tuple[str, list], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(*statement).fetchone()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True)
    p.add_argument("--per-zoom", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    catalog, tiling = build_catalog(), get_tiling("WebMercatorQuad")
    plan = TilePlan(catalog)
    sums: dict[tuple[str, int], list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    with psycopg.connect(args.database, autocommit=True) as conn:
        _configure(conn)
        for layer_id, z, x, y in tile_list(args.database, args.per_zoom, args.seed):
            layer = catalog.get(layer_id)
            if not layer.min_zoom <= z <= layer.max_zoom:
                continue
            request = plan.request(layer, tiling, z, x, y)
            transforming = dataclasses.replace(layer, mercator_copy=False)
            sums[layer_id, z][0] += best(conn, tile_sql(layer, request, Scope.everything()), args.runs)
            sums[layer_id, z][1] += best(conn, tile_sql(transforming, request, Scope.everything()), args.runs)
    print("| layer | zoom | as served (s) | with ST_Transform (s) |")
    print("|---|---:|---:|---:|")
    for layer_id in LAYERS:
        for (lyr, z), (served, transformed) in sorted(sums.items()):
            if lyr == layer_id:
                print(f"| {lyr} | {z} | {served:.3f} | {transformed:.3f} |")
        served = sum(v[0] for k, v in sums.items() if k[0] == layer_id)
        transformed = sum(v[1] for k, v in sums.items() if k[0] == layer_id)
        print(f"| **{layer_id}** | all | **{served:.3f}** | **{transformed:.3f}** |")


if __name__ == "__main__":
    main()
