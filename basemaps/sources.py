"""Raster sources from Cloud-Optimized GeoTIFFs and the registry that opens each one once at start."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.env import set_gdal_config
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_bounds

from basemaps.errors import SourceUnavailable
from geoserver.errors import NotFound

log = logging.getLogger("onemap.basemaps")

RenderKind = Literal["rgb", "ramp", "hillshade"]
# The sample county's files, by source id; a user's extra COGs are added by file stem.
SAMPLE_FILES = {"imagery": "imagery.tif", "dem": "dem.tif"}
TITLES = {"imagery": "Orthophoto", "dem": "Elevation (DEM)", "hillshade": "Hillshade"}
# Open handles kept per file: enough for the tiles of a 2-core server at once; a render beyond that waits for one.
HANDLES_PER_FILE = 4
# GDAL's block cache, process-wide, unless GDAL_CACHEMAX is set: GDAL's own default is 5 % of the machine's
# memory (1.2 GB on 24 GB), which a server rendering imagery tiles fills over hours and never gives back.
DEFAULT_GDAL_CACHE_MB = 64


class Handle:
    """One open dataset on a file, and the rio-tiler readers over it by tile matrix set (one thread at a time)."""

    def __init__(self, path: Path) -> None:
        self.dataset = rasterio.open(path)
        self.readers: dict[str, object] = {}


class Handles:
    """The open handles on one file, lent to one thread at a time and kept for the next (at most `size`).

    GDAL datasets are not safe to share across threads. A handle per thread of the server's thread pool (40)
    per file kept ~10 MB each of GDAL state alive; a small pool bounds that whatever the pool's size.
    """

    def __init__(self, path: Path, size: int = HANDLES_PER_FILE) -> None:
        self.path, self.size = path, size
        self._free: list[Handle] = []
        self._opened = 0
        self._cond = threading.Condition()

    @contextmanager
    def borrow(self) -> Iterator[Handle]:
        """A handle for this thread until the block ends (opened on first need, waited for when all are lent)."""
        with self._cond:
            while not self._free and self._opened >= self.size:
                self._cond.wait()
            handle = self._free.pop() if self._free else None
            if handle is None:
                self._opened += 1
        if handle is None:
            try:
                handle = Handle(self.path)
            except BaseException:
                with self._cond:
                    self._opened -= 1
                    self._cond.notify()
                raise
        try:
            yield handle
        finally:
            with self._cond:
                self._free.append(handle)
                self._cond.notify()

    @property
    def opened(self) -> int:
        """How many handles are open (lent or free)."""
        return self._opened


# glibc's malloc: M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (malloc.h), and the fixed value we give both.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MALLOC_THRESHOLD = 128 * 1024


def fix_malloc_thresholds(nbytes: int = MALLOC_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds for this process, unless the environment sets them; True if set.

    By default glibc raises its mmap threshold to the largest block freed so far, after which the tile buffers
    GDAL and numpy allocate and free by the megabyte come from a heap that fragments and is never given back:
    an imagery-only server climbed 216 -> 419 MB in 8 minutes, and held at ~305 MB with the thresholds fixed
    (docs/benchmarks.md). Elsewhere than glibc, nothing is changed.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, nbytes)) and bool(mallopt(M_TRIM_THRESHOLD, nbytes))


def bound_gdal_cache(megabytes: int = DEFAULT_GDAL_CACHE_MB) -> None:
    """Cap GDAL's raster block cache for this process, unless the environment sets GDAL_CACHEMAX itself."""
    if os.environ.get("GDAL_CACHEMAX"):
        return
    set_gdal_config("GDAL_CACHEMAX", int(megabytes) * 2**20)  # rasterio passes it on to GDALSetCacheMax64


@dataclass
class RasterSource:
    """One COG served as map tiles: how it is drawn, where it lies and what value range it holds."""

    id: str
    title: str
    path: Path
    kind: RenderKind
    bounds: tuple[float, float, float, float]  # lon/lat
    crs: CRS
    count: int
    dtype: str
    nodata: float | None
    value_range: tuple[float, float]
    overviews: list[int]
    native_resolution: float  # in the file's CRS units per pixel
    handles: Handles = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.handles is None:
            self.handles = Handles(self.path)

    @property
    def media_alpha(self) -> bool:
        """True when the raster has areas without data that a PNG/WebP tile shows as transparent."""
        return self.nodata is not None or self.kind == "rgb"


def _inspect(source_id: str, path: Path, kind: RenderKind | None) -> RasterSource:
    """Open a COG once and read what rendering needs; SourceUnavailable naming the file if it cannot."""
    if not path.exists():
        raise SourceUnavailable(str(path), "file not found")
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise SourceUnavailable(str(path), "has no coordinate reference system")
            bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
            overviews = ds.overviews(1)
            if kind is None:
                kind = "rgb" if ds.count >= 3 and ds.dtypes[0] == "uint8" else "ramp"
            value_range = (0.0, 255.0)
            if kind != "rgb":
                # The smallest overview is enough to learn the value range for the colour ramp.
                factor = overviews[-1] if overviews else max(1, max(ds.width, ds.height) // 512)
                shape = (max(1, ds.height // factor), max(1, ds.width // factor))
                data = ds.read(1, out_shape=shape, masked=True)
                valid = data.compressed()
                if valid.size == 0:
                    raise SourceUnavailable(str(path), "holds no valid pixels")
                value_range = (float(np.percentile(valid, 1)), float(np.percentile(valid, 99)))
            return RasterSource(
                id=source_id, title=TITLES.get(source_id, source_id), path=path, kind=kind,
                bounds=tuple(bounds), crs=ds.crs, count=ds.count, dtype=ds.dtypes[0], nodata=ds.nodata,
                value_range=value_range, overviews=overviews, native_resolution=abs(ds.transform.a),
            )
    except RasterioIOError as exc:
        raise SourceUnavailable(str(path), f"not a readable GeoTIFF ({exc})") from None


class RasterRegistry:
    """Every raster source, by id, opened and checked once at start."""

    def __init__(self, sources: Iterable[RasterSource]) -> None:
        self._sources = {s.id: s for s in sources}

    @classmethod
    def build(cls, sample_dir: Path | None, extra: Iterable[Path] = ()) -> RasterRegistry:
        """Sources from the sample directory (when its COGs exist) and from configured files (must exist).

        The DEM also yields a `hillshade` source, shaded per tile from the DEM itself. GDAL's block cache is
        capped here (`bound_gdal_cache`), and glibc's malloc thresholds fixed (`fix_malloc_thresholds`),
        before any tile is read.
        """
        bound_gdal_cache()
        fix_malloc_thresholds()
        sources: list[RasterSource] = []
        if sample_dir is not None:
            for source_id, name in SAMPLE_FILES.items():
                path = Path(sample_dir) / name
                if path.exists():
                    sources.append(_inspect(source_id, path, "rgb" if source_id == "imagery" else "ramp"))
                else:
                    log.warning("no %s at %s: the %r base map is not served", name, sample_dir, source_id)
        for path in extra:
            path = Path(path)
            source = _inspect(path.stem, path, None)
            if any(s.id == source.id for s in sources):
                raise SourceUnavailable(str(path), f"source id {source.id!r} (the file's stem) is taken")
            sources.append(source)
        dem = next((s for s in sources if s.id == "dem"), None)
        if dem is not None:
            # the same file: the DEM's handles serve both
            sources.append(RasterSource(**{**dem.__dict__, "id": "hillshade", "title": TITLES["hillshade"],
                                           "kind": "hillshade"}))
        return cls(sources)

    def get(self, source_id: str) -> RasterSource:
        """The source `source_id`, or NotFound naming it."""
        try:
            return self._sources[source_id]
        except KeyError:
            known = ", ".join(self._sources) or "none"
            raise NotFound(f"no raster source {source_id!r}; known: {known}", parameter="source") from None

    def __iter__(self) -> Iterator[RasterSource]:
        return iter(self._sources.values())

    def __len__(self) -> int:
        return len(self._sources)

    @property
    def ids(self) -> tuple[str, ...]:
        """Source ids in registration order."""
        return tuple(self._sources)
