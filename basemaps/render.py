"""Map tiles from a raster source: read the tile window (overviews at low zooms), colour it, encode it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import morecantile
import numpy as np
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.utils import render

from basemaps.sources import Handle, RasterSource
from geoserver.errors import BadInput

TILE_SIZE = 256


@dataclass(frozen=True)
class TileFormat:
    """An image encoding a tile can be served in."""

    name: str
    media_type: str
    gdal_driver: str
    alpha: bool


FORMATS = {
    "png": TileFormat("png", "image/png", "PNG", True),
    "jpeg": TileFormat("jpeg", "image/jpeg", "JPEG", False),
    "webp": TileFormat("webp", "image/webp", "WEBP", True),
}
_ALIASES = {"jpg": "jpeg", "image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}


def tile_format(name: str, parameter: str = "f") -> TileFormat:
    """The format called `name` (png, jpeg/jpg, webp or their media types), or BadInput naming `parameter`."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise BadInput(f"unsupported tile format {name!r}; expected one of png, jpeg, webp", parameter=parameter)
    return FORMATS[key]


def check_tile(tms: morecantile.TileMatrixSet, z: int, row: int, col: int) -> morecantile.Tile:
    """The tile, or BadInput if the matrix set has no such matrix, row or column."""
    ids = [m.id for m in tms.tileMatrices]
    if str(z) not in ids:
        raise BadInput(f"{tms.id} has no tile matrix {z}; it has {ids[0]}..{ids[-1]}", parameter="tileMatrix")
    matrix = tms.matrix(z)
    if not 0 <= row < matrix.matrixHeight:
        raise BadInput(f"tile row {row} is outside matrix {z} (0..{matrix.matrixHeight - 1})", parameter="tileRow")
    if not 0 <= col < matrix.matrixWidth:
        raise BadInput(f"tile column {col} is outside matrix {z} (0..{matrix.matrixWidth - 1})", parameter="tileCol")
    return morecantile.Tile(col, row, z)


# A terrain ramp (low to high): green valleys, ochre slopes, grey rock, white peaks.
_RAMP_STOPS = np.array([
    [0.00, 46, 125, 50], [0.25, 139, 172, 84], [0.50, 214, 190, 120],
    [0.75, 150, 120, 95], [0.90, 190, 190, 190], [1.00, 255, 255, 255],
])
RAMP = np.stack([np.interp(np.linspace(0, 1, 256), _RAMP_STOPS[:, 0], _RAMP_STOPS[:, i]) for i in (1, 2, 3)]
                ).astype(np.uint8)  # shape (3, 256)


def _reader(handle: Handle, source: RasterSource, tms: morecantile.TileMatrixSet) -> Reader:
    reader = handle.readers.get(tms.id)
    if reader is None:
        reader = handle.readers[tms.id] = Reader(str(source.path), dataset=handle.dataset, tms=tms)
    return reader


def hillshade(elevation: np.ndarray, dx: float, dy: float, azimuth: float = 315.0,
              altitude: float = 45.0) -> np.ndarray:
    """Shading in 0..1 of a (buffered) elevation grid with pixel sizes in metres; output loses one pixel a side."""
    z = elevation.astype("float64")
    dzdx = ((z[:-2, 2:] + 2 * z[1:-1, 2:] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[1:-1, :-2] + z[2:, :-2])) / (8 * dx)
    dzdy = ((z[2:, :-2] + 2 * z[2:, 1:-1] + z[2:, 2:]) - (z[:-2, :-2] + 2 * z[:-2, 1:-1] + z[:-2, 2:])) / (8 * dy)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    zenith = math.radians(90.0 - altitude)
    sun = math.radians((450.0 - azimuth) % 360.0)
    shade = math.cos(zenith) * np.cos(slope) + math.sin(zenith) * np.sin(slope) * np.cos(sun - aspect)
    return np.clip(shade, 0.0, 1.0)


def _pixel_metres(tms: morecantile.TileMatrixSet, tile: morecantile.Tile) -> tuple[float, float]:
    west, south, east, north = tms.bounds(tile)
    lat = math.radians((south + north) / 2)
    return ((east - west) * 111_320.0 * math.cos(lat) / TILE_SIZE, (north - south) * 110_574.0 / TILE_SIZE)


def _valid(img) -> np.ndarray:
    """255 where every band has data, 0 elsewhere (rio-tiler's own mask takes the data's dtype)."""
    return np.where(np.ma.getmaskarray(img.array).any(axis=0), 0, 255).astype("uint8")


def _inner_valid(valid: np.ndarray) -> np.ndarray:
    """Of a buffered mask, the inner pixels whose whole 3x3 neighbourhood has data (no shading off nodata)."""
    ok = valid > 0
    inner = np.ones((ok.shape[0] - 2, ok.shape[1] - 2), dtype=bool)
    for dy in range(3):
        for dx in range(3):
            inner &= ok[dy:dy + inner.shape[0], dx:dx + inner.shape[1]]
    return np.where(inner, 255, 0).astype("uint8")


def _read(reader: Reader, source: RasterSource, tms: morecantile.TileMatrixSet,
          tile: morecantile.Tile) -> tuple[np.ndarray, np.ndarray] | None:
    """The tile's pixels (bands, then a 0/255 validity mask), None where the file does not reach."""
    try:
        if source.kind == "rgb":
            img = reader.tile(tile.x, tile.y, tile.z, tilesize=TILE_SIZE, indexes=(1, 2, 3))
            data, valid = img.data.astype("uint8", copy=False), _valid(img)
        elif source.kind == "ramp":
            img = reader.tile(tile.x, tile.y, tile.z, tilesize=TILE_SIZE, indexes=1, resampling_method="bilinear",
                              reproject_method="bilinear")
            low, high = source.value_range
            scaled = np.clip((img.data[0].astype("float32") - low) / max(high - low, 1e-9), 0, 1)
            data, valid = RAMP[:, (scaled * 255).astype("uint8")], _valid(img)
        else:
            # Cubic, not nearest or bilinear: their gradients are stepped once the DEM is magnified.
            img = reader.tile(tile.x, tile.y, tile.z, tilesize=TILE_SIZE, indexes=1, buffer=1,
                              resampling_method="cubic", reproject_method="cubic")
            shade = hillshade(img.data[0], *_pixel_metres(tms, tile))
            grey = (shade * 255).astype("uint8")
            data, valid = np.stack([grey, grey, grey]), _inner_valid(_valid(img))
    except TileOutsideBounds:
        return None
    return data, valid


@lru_cache(maxsize=8)
def empty_tile(fmt_name: str) -> bytes:
    """A tile with nothing on it: transparent in PNG/WebP, white in JPEG."""
    fmt = FORMATS[fmt_name]
    data = np.full((3, TILE_SIZE, TILE_SIZE), 255, dtype="uint8")
    mask = np.zeros((TILE_SIZE, TILE_SIZE), dtype="uint8") if fmt.alpha else None
    return render(data, mask, img_format=fmt.gdal_driver)


def render_tile(source: RasterSource, tms: morecantile.TileMatrixSet, z: int, row: int, col: int,
                fmt: TileFormat) -> bytes:
    """The encoded map tile (z, row, col) of `source` in `tms`; empty where the source has no coverage."""
    tile = check_tile(tms, z, row, col)
    with source.handles.borrow() as handle:  # read under the handle, encode after giving it back
        read = _read(_reader(handle, source, tms), source, tms, tile)
    if read is None:
        return empty_tile(fmt.name)
    data, valid = read
    if not valid.any():  # inside the file's bounds but all nodata (outside the county's outline)
        return empty_tile(fmt.name)
    if fmt.name == "png":
        # Photographs barely deflate: level 1 costs ~6% more bytes than 6 and a third of the CPU.
        options = {"ZLEVEL": 1 if source.kind == "rgb" else 6}
    else:
        options = {"QUALITY": 85}
    return render(data, valid if fmt.alpha else None, img_format=fmt.gdal_driver, **options)
