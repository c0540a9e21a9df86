"""Small Cloud-Optimized GeoTIFFs made in a test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.shutil import copy as rio_copy
from rasterio.transform import from_bounds

# A small patch of the plateau (lon/lat), as the sample county's rasters are.
BOUNDS = (100.70, 32.90, 100.80, 32.98)


def _write_cog(path: Path, data: np.ndarray, nodata: float | None, bounds=BOUNDS) -> Path:
    count, height, width = data.shape
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype=data.dtype.name,
                   crs="EPSG:4326", transform=from_bounds(*bounds, width, height), nodata=nodata,
                   tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(tmp, "w", **profile) as ds:
        ds.write(data)
        ds.build_overviews([2, 4, 8], Resampling.average)
    rio_copy(tmp, path, driver="COG")
    tmp.unlink()
    return path


def make_imagery(path: Path, size: int = 1024) -> Path:
    """An RGB orthophoto-like COG: a colour gradient, with nodata 0 in its first columns."""
    y, x = np.mgrid[0:size, 0:size]
    data = np.stack([(x * 255 // size), (y * 255 // size), np.full_like(x, 120)]).astype("uint8")
    data[:, :, : size // 8] = 0
    return _write_cog(path, data, 0)


def make_dem(path: Path, size: int = 1024) -> Path:
    """An elevation COG (metres, float32): a hill on a slope, with a nodata corner."""
    y, x = np.mgrid[0:size, 0:size] / size
    z = 3500 + 400 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.05) + 200 * x
    z[: size // 10, : size // 10] = -9999
    return _write_cog(path, z[None].astype("float32"), -9999)
