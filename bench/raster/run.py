"""Imagery tiles/s and p95 latency, onemap side by side with TiTiler on the same COG and tile list; 3D build.

Not a test. Reproduce (TiTiler lives in its own venv under bench/, never in the project venv):

    python3.11 -m venv bench/.venv-titiler && bench/.venv-titiler/bin/pip install titiler.application uvicorn
    .venv/bin/python bench/raster/run.py [--sample-dir data/sample] [--tiles 300] [--out bench/results/raster.md]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import morecantile
import rasterio
from rasterio.warp import transform_bounds

ROOT = Path(__file__).resolve().parents[2]
TITILER = ROOT / "bench" / ".venv-titiler" / "bin" / "uvicorn"
sys.path.insert(0, str(ROOT))


def synthetic_cog(path: Path, size: int = 8192) -> Path:
    """A textured RGB orthophoto-like COG (JPEG, overviews), when the sample county has none."""
    import numpy as np
    from rasterio.enums import Resampling
    from rasterio.shutil import copy as rio_copy
    from rasterio.transform import from_bounds

    rng = np.random.default_rng(5)
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:4326",
                   transform=from_bounds(100.70, 32.90, 100.78, 32.98, size, size), tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate")
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, size, 512):
            y, x = np.mgrid[row:row + 512, 0:size]
            base = (np.sin(x / 97.0) + np.cos(y / 61.0)) * 40 + 120
            noise = rng.integers(-25, 25, size=(3, 512, size))
            ds.write(np.clip(base + noise, 0, 255).astype("uint8"), window=((row, row + 512), (0, size)))
        ds.build_overviews([2, 4, 8, 16, 32], Resampling.average)
    rio_copy(tmp, path, driver="COG", compress="JPEG", quality=85)
    tmp.unlink()
    return path


def tile_list(cog: Path, count: int, zooms: range = range(9, 16), seed: int = 1) -> list[tuple[int, int, int]]:
    """`count` WebMercatorQuad tiles over the COG, as many per zoom (9-15 by default), in a fixed random order.

    Equal numbers per zoom, as a person panning and zooming asks for them; picking uniformly among all tiles
    would make nearly every request one of the deepest zoom's.
    """
    tms = morecantile.tms.get("WebMercatorQuad")
    with rasterio.open(cog) as ds:
        bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    rng = random.Random(seed)
    out = []
    for z in zooms:
        tiles = [(t.z, t.x, t.y) for t in tms.tiles(*bounds, zooms=[z])]
        out += [rng.choice(tiles) for _ in range(count // len(zooms))]
    rng.shuffle(out)
    return out


def wait_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not come up: {url}")


def measure(urls: list[str], clients: int) -> dict:
    """Every URL fetched once, split over `clients` threads, each with its own keep-alive connection."""
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    lock = threading.Lock()
    shares = [urls[i::clients] for i in range(clients)]

    def worker(share: list[str]) -> None:
        nonlocal errors
        with httpx.Client(timeout=60) as client:
            for url in share:
                t0 = time.perf_counter()
                r = client.get(url)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    sizes.append(len(r.content))
                    errors += r.status_code != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {"tiles_per_s": len(urls) / wall, "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
            "median_ms": statistics.median(latencies) * 1000, "errors": errors,
            "kb": statistics.mean(sizes) / 1024}


def synthetic_buildings(count: int) -> list:
    """`count` rectangular houses on a jittered grid over ~10 x 10 km (when no sample county is generated)."""
    import shapely

    from tiles.extrude import Building

    rng = random.Random(7)
    side = int(count ** 0.5) + 1
    out = []
    for i in range(count):
        x, y = 100.70 + (i % side) * 0.1 / side, 32.90 + (i // side) * 0.1 / side
        w, h = rng.uniform(8e-5, 2e-4), rng.uniform(8e-5, 2e-4)
        floors = rng.randint(1, 6)
        out.append(Building(i + 1, shapely.box(x, y, x + w, y + h), floors * 3.0, floors,
                            rng.choice(["residential", "commercial", "religious"]), f"T{i % 9}", i % 50 == 0))
    return out


def bench_3d(database: str | None, synthetic: int) -> tuple[str, dict]:
    """Build the white model from a store's buildings (or synthetic ones): seconds and bytes (tileset + glb)."""
    from tiles.extrude import Building
    from tiles.white_model import build_white_model

    t0 = time.perf_counter()
    if database:
        from geoserver.access import Scope
        from geoserver.store import open_store
        from layers.catalog import build_catalog

        with open_store(database, build_catalog()) as store:
            buildings = [Building.from_feature(f.id, f.geometry, f.properties)
                         for f in store.iter_features("buildings", Scope.everything())]
        label = f"the buildings of {database}"
    else:
        buildings = synthetic_buildings(synthetic)
        label = f"{synthetic} synthetic rectangular buildings (no sample county was generated)"
    read = time.perf_counter() - t0
    model = build_white_model(buildings)
    t1 = time.perf_counter()
    size = len(json.dumps(model.tileset)) + sum(len(model.content(p)) for p in model.leaves)
    return label, {"buildings": len(buildings), "read_s": read, "tileset_s": model.build_seconds,
                   "all_glb_s": time.perf_counter() - t1, "bytes": size, "content_tiles": len(model.leaves)}


def _three_d_line(label: str, r: dict) -> str:
    return (f"3D white model from {label}: {r['buildings']} buildings read in {r['read_s']:.1f} s, tileset built in "
            f"{r['tileset_s']:.2f} s, all {r['content_tiles']} glb made in {r['all_glb_s']:.1f} s, "
            f"{r['bytes'] / 1e6:.1f} MB in all.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-dir", type=Path, default=Path(os.environ.get("ONEMAP_SAMPLE_DIR", "data/sample")))
    parser.add_argument("--tiles", type=int, default=300)
    parser.add_argument("--buildings", type=int, default=100_000, help="synthetic buildings without a sample")
    parser.add_argument("--buildings-db", help="the store whose buildings the 3D build reads "
                        "(default: the sample dir's county.gpkg), e.g. data/large/county.gpkg")
    parser.add_argument("--skip-raster", action="store_true", help="only the 3D build")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "raster.md")
    args = parser.parse_args()
    if args.skip_raster:
        gpkg = Path(args.buildings_db or args.sample_dir / "county.gpkg")
        label, three_d = bench_3d(str(gpkg) if gpkg.exists() else None, args.buildings)
        print(_three_d_line(label, three_d))
        return
    if not TITILER.exists():
        sys.exit(f"TiTiler is not installed: see the reproduction lines at the top of {__file__}")
    work = Path(tempfile.mkdtemp(prefix="onemap-bench-raster-"))
    cog = args.sample_dir / "imagery.tif"
    note = f"the sample county's orthophoto ({cog})"
    if not cog.exists():
        sample = work / "sample"
        sample.mkdir()
        cog = synthetic_cog(sample / "imagery.tif")
        note = "a synthetic 8192x8192 RGB JPEG COG (the sample county was not generated)"
    sample_dir = cog.parent
    tiles = tile_list(cog, args.tiles)
    gpkg = args.sample_dir / "county.gpkg"
    launcher = (
        "import sys, uvicorn; from pathlib import Path; from api.app import create_app; "
        "from api.settings import Settings; "
        f"app = create_app(Settings(database={str(gpkg if gpkg.exists() else work / 'empty.gpkg')!r}, "
        f"sample_dir=Path({str(sample_dir)!r}), migrate_on_start={not gpkg.exists()})); "
        "uvicorn.run(app, host='127.0.0.1', port=8751, log_level='warning')"
    )
    env = {**os.environ, "GDAL_CACHEMAX": "200"}
    servers = {
        "onemap": subprocess.Popen([sys.executable, "-c", launcher], cwd=ROOT, env=env),
        "titiler": subprocess.Popen([str(TITILER), "titiler.application.main:app", "--host", "127.0.0.1",
                                     "--port", "8752", "--log-level", "warning"], cwd=work, env=env),
    }
    urls = {
        "onemap": [f"http://127.0.0.1:8751/collections/imagery/map/tiles/WebMercatorQuad/{z}/{y}/{x}?f=png"
                   for z, x, y in tiles],
        "titiler": [f"http://127.0.0.1:8752/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={cog.resolve()}"
                    f"&bidx=1&bidx=2&bidx=3" for z, x, y in tiles],
    }
    results: dict[tuple[str, int], dict] = {}
    try:
        wait_up("http://127.0.0.1:8751/healthz", servers["onemap"])
        wait_up("http://127.0.0.1:8752/healthz", servers["titiler"])
        for name in servers:  # warm both: OS page cache, GDAL block cache, imports
            measure(urls[name], 4)
        for clients in (1, 10):
            for name in servers:
                results[(name, clients)] = measure(urls[name], clients)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(timeout=20)
    lines = [f"Imagery: {len(tiles)} WebMercatorQuad PNG tiles (z9-15, equal numbers per zoom) of {note}; one uvicorn "
             "process each,",
             "same machine, warmed once; every tile fetched once per run.", "",
             "| server | clients | tiles/s | p95 ms | median ms | KB/tile | errors |", "|---|---:|---:|---:|---:|---:|---:|"]
    for (name, clients), r in results.items():
        lines.append(f"| {name} | {clients} | {r['tiles_per_s']:.1f} | {r['p95_ms']:.1f} | {r['median_ms']:.1f} |"
                     f" {r['kb']:.0f} | {r['errors']} |")
    for clients in (1, 10):
        ratio = results[("onemap", clients)]["tiles_per_s"] / results[("titiler", clients)]["tiles_per_s"]
        lines.append(f"\nonemap / TiTiler throughput with {clients} client(s): **{ratio:.2f}x**")
    buildings_db = Path(args.buildings_db) if args.buildings_db else gpkg
    label, three_d = bench_3d(str(buildings_db) if buildings_db.exists() else None, args.buildings)
    lines.append("\n" + _three_d_line(label, three_d))
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
