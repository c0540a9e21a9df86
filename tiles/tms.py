"""The tile matrix sets we serve: WebMercatorQuad and CGCS2000Quad (EPSG:4490), both via morecantile."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import morecantile
from pyproj import CRS, Transformer

from geoserver.errors import BadInput, NotFound

WEB_MERCATOR = "WebMercatorQuad"
CGCS2000 = "CGCS2000Quad"
MAX_ZOOM = 22


def _cgcs2000_quad() -> morecantile.TileMatrixSet:
    # The geographic quad of Chinese national base maps (Tianditu's "_c" grids): CGCS2000 lon/lat, the
    # whole world as 2x1 tiles at z0 and a doubling per level -- WorldCRS84Quad's shape in EPSG:4490.
    return morecantile.TileMatrixSet.custom(
        [-180.0, -90.0, 180.0, 90.0], CRS.from_epsg(4490), id=CGCS2000, matrix_scale=[2, 1],
        minzoom=0, maxzoom=MAX_ZOOM, title="CGCS2000 geographic quad (EPSG:4490)", ordered_axes=["Lat", "Lon"],
    )


@cache
def _registry() -> dict[str, morecantile.TileMatrixSet]:
    return {WEB_MERCATOR: morecantile.tms.get(WEB_MERCATOR), CGCS2000: _cgcs2000_quad()}


def tms_ids() -> tuple[str, ...]:
    """The ids of the tile matrix sets we serve."""
    return tuple(_registry())


def get_tms(tms_id: str) -> morecantile.TileMatrixSet:
    """The morecantile TileMatrixSet `tms_id`, or NotFound naming the known ones."""
    try:
        return _registry()[tms_id]
    except KeyError:
        raise NotFound(f"unknown tile matrix set {tms_id!r}; known: {', '.join(tms_ids())}",
                       parameter="tileMatrixSetId") from None


def tms_document(tms_id: str) -> dict:
    """The OGC TileMatrixSet 2.0 JSON of `tms_id`."""
    return get_tms(tms_id).model_dump(mode="json", exclude_none=True)


_EARTH_RADIUS = 6378137.0  # EPSG:3857's sphere


@lru_cache(maxsize=256)
def _matrix_grid(tms_id: str, z: int) -> tuple[float, float, float, int, int] | None:
    """Origin x/y, cell size and tile width/height of a regular top-left matrix; None for any other kind."""
    tms = get_tms(tms_id)
    m = tms.matrix(z)
    if m.variableMatrixWidths is not None or m.cornerOfOrigin != "topLeft":
        return None
    origin_x, origin_y = tms._matrix_origin(m)
    return origin_x, origin_y, m.cellSize, m.tileWidth, m.tileHeight


@lru_cache(maxsize=256)
def _matrix_size(tms_id: str, z: int) -> tuple[int, int]:
    """Columns and rows of a zoom's matrix (read once: morecantile's model access cost ~6 % of a cached tile)."""
    m = get_tms(tms_id).matrix(z)
    return m.matrixWidth, m.matrixHeight


def _mercator_lon(x: float) -> float:
    return math.degrees(x / _EARTH_RADIUS)


def _mercator_lat(y: float) -> float:
    return math.degrees(math.atan(math.sinh(y / _EARTH_RADIUS)))


@dataclass(frozen=True)
class TileAddress:
    """One tile of one matrix set: the TMS id, zoom, column (x) and row (y)."""

    tms: str
    z: int
    x: int
    y: int


@dataclass(frozen=True)
class Tiling:
    """How one tile matrix set cuts the world into tiles (OGC's tiling scheme): tile arithmetic and its EPSG code.

    Not a grid (网格) of the governance layers: those are the `grids` layer.
    """

    tms_id: str
    epsg: int

    @property
    def tms(self) -> morecantile.TileMatrixSet:
        """The morecantile definition."""
        return get_tms(self.tms_id)

    def check(self, z: int, x: int, y: int) -> TileAddress:
        """The address if z/row/col lie inside the matrix, else BadInput naming the parameter."""
        if not 0 <= z <= MAX_ZOOM:
            raise BadInput(f"tileMatrix must be between 0 and {MAX_ZOOM}, got {z}", parameter="tileMatrix")
        width, height = _matrix_size(self.tms_id, z)
        if not 0 <= y < height:
            raise BadInput(f"tileRow must be between 0 and {height - 1} at zoom {z}, got {y}", parameter="tileRow")
        if not 0 <= x < width:
            raise BadInput(f"tileCol must be between 0 and {width - 1} at zoom {z}, got {x}", parameter="tileCol")
        return TileAddress(self.tms_id, z, x, y)

    def bounds(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """The tile's bounds in the TMS CRS, x (easting/longitude) first."""
        grid = _matrix_grid(self.tms_id, z)
        if grid is None:
            b = self.tms.xy_bounds(morecantile.Tile(x, y, z))
            return (b.left, b.bottom, b.right, b.top)
        # morecantile's own arithmetic, term for term (so the same floats), without its per-call model access
        origin_x, origin_y, cell, width, height = grid
        return (origin_x + x * cell * width, origin_y - (y + 1) * cell * height,
                origin_x + (x + 1) * cell * width, origin_y - y * cell * height)

    def lonlat_bounds(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """The tile's bounds in lon/lat (EPSG:4326)."""
        if self.epsg == 3857:
            # Spherical Mercator inverted in closed form: equal to PROJ's answer to ~1e-12 degrees, and a
            # tenth of its cost (morecantile + pyproj took a third of a tile's Python time in the thread pool).
            w, s, e, n = self.bounds(z, x, y)
            return (_mercator_lon(w), _mercator_lat(s), _mercator_lon(e), _mercator_lat(n))
        b = self.tms.bounds(morecantile.Tile(x, y, z))
        return (b.left, b.bottom, b.right, b.top)

    def to_crs(self, lon, lat):
        """Lon/lat (EPSG:4326) arrays as TMS CRS x/y arrays."""
        return _transformer(self.epsg).transform(lon, lat)

    def tiles_covering(self, bbox: tuple[float, float, float, float], z: int, margin: float = 0.0):
        """The (x, y) ranges of the tiles at zoom `z` whose bounds, grown by `margin` of a tile, meet a lon/lat bbox."""
        m = self.tms.matrix(z)
        span_x = m.cellSize * m.tileWidth
        span_y = m.cellSize * m.tileHeight
        x0, y0 = self.origin(z)
        xs, ys = self.to_crs([bbox[0], bbox[2]], [bbox[1], bbox[3]])
        col_lo = math.floor((min(xs) - x0) / span_x - margin)
        col_hi = math.floor((max(xs) - x0) / span_x + margin)
        row_lo = math.floor((y0 - max(ys)) / span_y - margin)
        row_hi = math.floor((y0 - min(ys)) / span_y + margin)
        cols = range(max(col_lo, 0), min(col_hi, m.matrixWidth - 1) + 1)
        rows = range(max(row_lo, 0), min(row_hi, m.matrixHeight - 1) + 1)
        return cols, rows

    def origin(self, z: int) -> tuple[float, float]:
        """The top-left corner of the matrix at zoom `z`, x first."""
        b = self.tms.xy_bounds(morecantile.Tile(0, 0, z))
        return b.left, b.top


@cache
def _transformer(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


TILINGS = {WEB_MERCATOR: Tiling(WEB_MERCATOR, 3857), CGCS2000: Tiling(CGCS2000, 4490)}


def get_tiling(tms_id: str) -> Tiling:
    """The tiling of tile matrix set `tms_id`, or NotFound."""
    get_tms(tms_id)
    return TILINGS[tms_id]
