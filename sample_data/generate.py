"""Generate the sample county into a directory: county.gpkg, imagery.tif, dem.tif and, last, manifest.json.

The rasters are made in a second process while this one writes the GeoPackage (two cores, two jobs). The
manifest is written only when everything else is in place, so a half-finished run is never taken for a
finished one.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shapely.geometry import Point

from geoserver.apikeys import sample_api_keys
from geoserver.features import Feature
from geoserver.store import Store, UserRecord, open_store
from layers.catalog import build_catalog
from sample_data.county import County
from sample_data.patrols import PatrolMaker, iter_patrol_chunks
from sample_data.sample import LAYER_IDS, SampleCounty
from sample_data.scales import GENERATOR_VERSION, SAMPLE_NOW
from sample_data.users import sample_users as _users_of

MANIFEST = "manifest.json"
GPKG = "county.gpkg"
LOAD_CHUNK = 100_000


def _batched(chunks: Iterable[list[Feature]], size: int = LOAD_CHUNK) -> Iterator[list[Feature]]:
    """Regroup chunks of any size into loads of about `size` features."""
    batch: list[Feature] = []
    for chunk in chunks:
        batch.extend(chunk)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _load_layer(store: Store, layer_id: str, chunks: Iterable[list[Feature]]) -> int:
    """Replace a layer's features with the given chunks; returns how many were loaded."""
    count = 0
    first = True
    for batch in _batched(chunks):
        count += store.bulk_load(layer_id, batch, replace=first)
        first = False
    if first:  # nothing at all: still empty the layer
        store.bulk_load(layer_id, [], replace=True)
    return count


def _positions(patrols: list[Feature]) -> list[Feature]:
    """Each worker's newest fix: the last point of his latest patrol (the live positions layer)."""
    latest: dict[str, Feature] = {}
    for p in patrols:
        w = p.properties["worker"]
        if w not in latest or p.properties["last_fix_at"] > latest[w].properties["last_fix_at"]:
            latest[w] = p
    out = []
    for i, (worker, p) in enumerate(sorted(latest.items()), start=1):
        lon, lat = p.geometry.coords[-1]
        out.append(Feature(i, Point(lon, lat), {
            "worker": worker, "device": None, "recorded_at": p.properties["last_fix_at"], "speed": None,
            "battery": None, "patrol_id": p.id, "township_code": p.properties["township_code"],
            "grid_code": p.properties["grid_code"]}))
    return out


def load_into(store: Store, sample: SampleCounty) -> dict[str, int]:
    """Load every layer, the accounts and the documented API keys of the sample into an opened, initialised store."""
    counts: dict[str, int] = {}
    for layer_id in LAYER_IDS:
        if layer_id == "patrols":
            continue  # loaded with the track points, from the same pass over the tracks
        if layer_id == "track_points":
            patrols: list[Feature] = []

            def points(into: list[Feature] = patrols) -> Iterator[list[Feature]]:
                maker = PatrolMaker(sample.county, sample.workers, sample.schedule, sample.seed)
                for some_patrols, some_points in iter_patrol_chunks(sample.county, maker):
                    into.extend(some_patrols)
                    yield some_points

            counts["track_points"] = _load_layer(store, "track_points", points())
            counts["patrols"] = _load_layer(store, "patrols", [patrols])
            counts["positions"] = _load_layer(store, "positions", [_positions(patrols)])
            continue
        counts[layer_id] = _load_layer(store, layer_id, sample.chunks(layer_id))
    users = sample.users()
    store.put_users(users)
    # Each grid's team (网格入格): its full-time grid worker, so a report is routed to him and the command
    # screen's dispatch chooser offers him.
    store.add_rows("grid_bindings", [{"grid_code": u.grids[0], "username": u.username, "role": "full_time"}
                                     for u in users if u.role == "worker" and u.grids],
                   unless=("grid_code", "username", "role"))  # loading again into the same database adds none
    for key in sample_api_keys([u.username for u in users]):
        store.put_api_key(key)  # the documented keys of README, stored only as hashes
    return {layer_id: counts[layer_id] for layer_id in LAYER_IDS}


def _write_rasters(out_dir: str, scale: str, seed: int) -> dict[str, Any]:
    """The raster job (run in its own process)."""
    from sample_data.rasters import write_rasters

    sample = SampleCounty(scale, seed)
    return write_rasters(Path(out_dir), sample.county, sample.temples, seed, sample.scale.raster_arcsec / 3600)


def _redacted(url: str) -> str:
    """A database URL without its password (the manifest is not a place for secrets)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _manifest_matches(path: Path, scale: str, seed: int) -> dict[str, Any] | None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (manifest.get("scale"), manifest.get("seed"), manifest.get("version")) == (scale, seed,
                                                                                      GENERATOR_VERSION)
    return manifest if same else None


def is_generated(out_dir: Path, scale: str = "default", seed: int = 2026, load: str | None = None) -> bool:
    """True if out_dir holds a finished sample of this scale, seed and generator version (and, when `load`
    names a database, the manifest records a finished load into it)."""
    out_dir = Path(out_dir)
    manifest = _manifest_matches(out_dir / MANIFEST, scale, seed)
    if manifest is None or not all((out_dir / f).exists() for f in (GPKG, "imagery.tif", "dem.tif")):
        return False
    return load is None or _redacted(load) in manifest.get("loaded_into", [])


def generate(out_dir: Path, scale: str = "default", seed: int = 2026, load: str | None = None) -> dict:
    """Generate the county into out_dir (county.gpkg via EmbeddedStore, imagery.tif, dem.tif, manifest.json);
    if `load` is a postgresql:// URL, load the same features into that store too. Returns the manifest
    (layer -> feature count, scale, seed, generator version, seconds taken)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _manifest_matches(out_dir / MANIFEST, scale, seed)
    # Files already generated for this scale and seed: a run with `load` only loads the database.
    reuse = previous is not None and load is not None and is_generated(out_dir, scale, seed)
    sample = SampleCounty(scale, seed)
    catalog = build_catalog()
    loaded_into = list(previous.get("loaded_into", [])) if reuse and previous else []
    timings: dict[str, float] = {}
    if reuse and previous:
        counts, rasters = previous["layers"], previous["rasters"]
    else:
        (out_dir / MANIFEST).unlink(missing_ok=True)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            raster_job = pool.submit(_write_rasters, str(out_dir), scale, seed)
            for suffix in ("", "-wal", "-shm"):
                Path(str(out_dir / GPKG) + suffix).unlink(missing_ok=True)
            t = time.perf_counter()
            with open_store(str(out_dir / GPKG), catalog) as store:
                store.initialize()
                counts = load_into(store, sample)
            timings["gpkg"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            rasters = raster_job.result()
            timings["rasters_wait"] = round(time.perf_counter() - t, 2)
    if load:
        t = time.perf_counter()
        with open_store(load, catalog) as store:
            store.initialize()
            load_into(store, sample)
        timings["postgis"] = round(time.perf_counter() - t, 2)
        loaded_into = sorted(set(loaded_into) | {_redacted(load)})
    manifest = {
        "generator": "onemap sample_data", "version": GENERATOR_VERSION, "scale": scale, "seed": seed,
        "now": SAMPLE_NOW.isoformat().replace("+00:00", "Z"), "outline": "Banma County (班玛县), Golog, Qinghai",
        "layers": counts, "users": len(sample.users()) if not reuse else previous.get("users"),
        "rasters": rasters, "gpkg_bytes": (out_dir / GPKG).stat().st_size, "loaded_into": loaded_into,
        "timings": timings, "seconds": round(time.perf_counter() - started, 2),
    }
    tmp = out_dir / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out_dir / MANIFEST)
    return manifest


def iter_layer(layer_id: str, scale: str = "default", seed: int = 2026) -> Iterator[Feature]:
    """Every feature of one layer of the sample, in id order (deterministic for a scale and seed)."""
    return SampleCounty(scale, seed).iter_layer(layer_id)


def sample_users(scale: str = "default", seed: int = 2026, county: County | None = None) -> list[UserRecord]:
    """The sample accounts (every password `onemap`), for the sample of this scale and seed."""
    return _users_of(county or SampleCounty(scale, seed).county)
