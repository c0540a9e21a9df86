"""Area layers (townships, villages, grids) as styled raster tiles for WMTS clients, within the caller's scope."""

from __future__ import annotations

from functools import cache

import morecantile
import numpy as np
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import from_bounds
from rio_tiler.utils import render

from basemaps.render import TILE_SIZE, TileFormat, check_tile, empty_tile
from geoserver.access import Principal, Scope, readable_layers
from geoserver.catalog import Catalog, Layer
from geoserver.errors import NotFound
from geoserver.features import MAX_LIMIT, FeatureQuery
from geoserver.store import Store

AREA_TYPES = ("Polygon", "MultiPolygon")


def drawable_layers(catalog: Catalog) -> list[Layer]:
    """The catalog's area layers with a style: those a WMTS client can get as outline tiles."""
    return [layer for layer in catalog if layer.geometry_type in AREA_TYPES and layer.style is not None
            and layer.style.kind in ("line", "fill")]


def readable(catalog: Catalog, principal: Principal) -> list[tuple[Layer, Scope]]:
    """The drawable layers the principal may read, with their scopes."""
    return readable_layers(principal, drawable_layers(catalog))


def layer_scope(catalog: Catalog, principal: Principal, layer_id: str) -> tuple[Layer, Scope]:
    """One drawable layer the principal may read; NotFound otherwise (existence must not leak)."""
    for layer, scope in readable(catalog, principal):
        if layer.id == layer_id:
            return layer, scope
    raise NotFound(f"no layer {layer_id!r} to draw", parameter="source")


@cache
def _to_tms(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def render_outlines(store: Store, layer: Layer, scope: Scope, tms: morecantile.TileMatrixSet, z: int, row: int,
                    col: int, fmt: TileFormat) -> bytes:
    """The layer's outlines (the catalog Style's colour, width, opacity) in one tile, read within `scope`."""
    tile = check_tile(tms, z, row, col)
    west, south, east, north = tms.bounds(tile)
    pad_x, pad_y = (east - west) / 64, (north - south) / 64
    bbox = (max(west - pad_x, -180.0), max(south - pad_y, -90.0), min(east + pad_x, 180.0), min(north + pad_y, 90.0))
    page = store.query(layer.id, FeatureQuery(bbox=bbox, limit=MAX_LIMIT, properties=("township_code",)), scope)
    geoms = [f.geometry for f in page.features if f.geometry is not None]
    if not geoms:
        return empty_tile(fmt.name)
    xy = tms.xy_bounds(tile)
    transformer = _to_tms(tms.crs.to_epsg())
    outlines = shapely.transform(shapely.boundary(np.array(geoms, dtype=object)),
                                 lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))
    style = layer.style
    pixel = (xy.right - xy.left) / TILE_SIZE
    if style.width > 1.5:
        outlines = shapely.buffer(outlines, style.width * pixel / 2)
    transform = from_bounds(xy.left, xy.bottom, xy.right, xy.top, TILE_SIZE, TILE_SIZE)
    ink = rasterize(list(outlines), out_shape=(TILE_SIZE, TILE_SIZE), transform=transform, all_touched=True,
                    dtype="uint8")
    r, g, b = _rgb(style.outline or style.color)
    data = np.zeros((3, TILE_SIZE, TILE_SIZE), dtype="uint8")
    for band, value in enumerate((r, g, b)):
        data[band] = np.where(ink > 0, value, 255)
    alpha = (ink * int(255 * style.opacity)).astype("uint8")
    return render(data, alpha if fmt.alpha else None, img_format=fmt.gdal_driver)
