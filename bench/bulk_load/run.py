"""Bulk-load speed: synthetic GPS track points streamed into a store (rows/s and peak memory).

Usage: .venv/bin/python bench/bulk_load/run.py --database postgresql://…/onemap_dev_pg [--rows 300000]
The database (or .gpkg path) is migrated if needed and its townships, grids and track_points are replaced.
Points are generated lazily, so the peak memory shows what the store itself holds while loading.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
from shapely.geometry import Point, box

from geoserver.features import Feature
from geoserver.store import open_store
from layers.catalog import build_catalog

TOWNSHIPS = 9
GRIDS_PER_TOWNSHIP = 40


def admin_areas() -> tuple[list[Feature], list[Feature]]:
    """Nine townships side by side over 100-109°E, 32-33°N, each cut into 40 grid strips."""
    townships, grids = [], []
    for t in range(TOWNSHIPS):
        code = f"632626{t + 1:03d}"
        townships.append(Feature(t + 1, box(100 + t, 32, 101 + t, 33), {"township_code": code}))
        for g in range(GRIDS_PER_TOWNSHIP):
            x0 = 100 + t + g / GRIDS_PER_TOWNSHIP
            grids.append(Feature(len(grids) + 1, box(x0, 32, x0 + 1 / GRIDS_PER_TOWNSHIP, 33),
                                 {"grid_code": f"{code}{g + 1:03d}", "township_code": code}))
    return townships, grids


def track_points(rows: int, seed: int = 1) -> Iterator[Feature]:
    """`rows` GPS fixes of 1,000-point patrols, generated 100,000 at a time."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 4, 1, tzinfo=UTC)
    for first in range(0, rows, 100_000):
        n = min(100_000, rows - first)
        xs, ys = rng.uniform(100, 100 + TOWNSHIPS, n), rng.uniform(32, 33, n)
        speeds = rng.gamma(2.0, 0.8, n)
        for i in range(n):
            k = first + i
            yield Feature(None, Point(xs[i], ys[i]), {
                "patrol_id": k // 1000, "worker": f"worker-{k % 500}",
                "recorded_at": start + timedelta(seconds=15 * k), "speed": float(speeds[i]), "accuracy": 5.0,
            })


def main() -> None:
    """Load and print rows/s and the peak resident memory."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True, help="postgresql:// URL or a .gpkg path")
    ap.add_argument("--rows", type=int, default=300_000)
    args = ap.parse_args()
    with open_store(args.database, build_catalog()) as store:
        store.initialize()
        townships, grids = admin_areas()
        store.bulk_load("townships", townships, replace=True)
        store.bulk_load("grids", grids, replace=True)
        started = time.perf_counter()
        n = store.bulk_load("track_points", track_points(args.rows), replace=True)
        seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{store.kind}: {n:,} track points in {seconds:.1f} s = {n / seconds:,.0f} rows/s "
          f"(generation included); peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
