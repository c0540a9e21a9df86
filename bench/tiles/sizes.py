"""The largest combined tile per zoom on a PostGIS sample county (the 500 KB check for the large sample).

Not a test. Reproduce:

    .venv/bin/python bench/tiles/sizes.py --database postgresql://postgres@127.0.0.1:5432/onemap_tiles_large
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geoserver.access import Scope  # noqa: E402
from geoserver.store import open_store  # noqa: E402
from layers.catalog import build_catalog  # noqa: E402
from tiles.plan import TilePlan  # noqa: E402
from tiles.tms import WEB_MERCATOR, get_tiling  # noqa: E402

SAMPLE = 20_000
LIMIT = 500_000


def positions(conn, layer_id: str) -> np.ndarray:
    """About SAMPLE feature positions of a layer, drawn by Bernoulli sampling (so densities are kept)."""
    n = conn.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [layer_id]).fetchone()[0] or 0
    pct = min(100.0, 100.0 * SAMPLE / max(n, 1))
    rows = conn.execute(f"SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM {layer_id} "
                        f"TABLESAMPLE BERNOULLI (%s)) s", [pct]).fetchall()
    return np.array(rows, dtype=float).reshape(-1, 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True)
    p.add_argument("--tms", default=WEB_MERCATOR)
    p.add_argument("--top", type=int, default=3)
    args = p.parse_args()
    catalog = build_catalog()
    plan = TilePlan(catalog)
    tiling = get_tiling(args.tms)
    store = open_store(args.database, catalog)
    store.open()
    with psycopg.connect(args.database) as conn:
        pts = {layer.id: positions(conn, layer.id) for layer in catalog}
    print("| z | largest tile KB | its heaviest layer (KB) | build s |\n|---:|---:|---|---:|")
    worst = 0
    for z in range(6, 18):
        m = tiling.tms.matrix(z)
        span = m.cellSize * m.tileWidth
        x0, y0 = tiling.origin(z)
        keys = []
        for layer in plan.layers_at(z):
            if len(pts[layer.id]):
                x, y = tiling.to_crs(pts[layer.id][:, 0], pts[layer.id][:, 1])
                keys.append(np.floor((np.asarray(x) - x0) / span).astype(np.int64) * (1 << 32)
                            + np.floor((y0 - np.asarray(y)) / span).astype(np.int64))
        values, counts = np.unique(np.concatenate(keys), return_counts=True)
        best = (0, "", 0.0, 0.0)
        for key in values[np.argsort(counts)[::-1][:args.top]]:
            tx, ty = int(key) >> 32, int(key) & 0xFFFFFFFF
            t0 = time.perf_counter()
            sizes = {lyr.id: len(store.tile(lyr.id, plan.request(lyr, tiling, z, tx, ty), Scope.everything()))
                     for lyr in plan.layers_at(z)}
            took = time.perf_counter() - t0
            total = sum(sizes.values())
            if total > best[0]:
                heavy = max(sizes, key=sizes.get)
                best = (total, heavy, sizes[heavy] / 1024, took)
        worst = max(worst, best[0])
        print(f"| {z} | {best[0] / 1024:.0f} | {best[1]} ({best[2]:.0f}) | {best[3]:.2f} |")
    print(f"\nlargest: {worst / 1024:.0f} KB ({'under' if worst <= LIMIT else 'OVER'} the 500 KB limit)")
    store.close()


if __name__ == "__main__":
    main()
