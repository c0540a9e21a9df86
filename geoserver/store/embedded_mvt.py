"""Vector tiles built in Python for the embedded store: shapely clip and simplify, mapbox-vector-tile encode."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import mapbox_vector_tile
import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import box

from geoserver.access import Scope
from geoserver.catalog import Layer
from geoserver.features import MAX_LIMIT, Feature, FeatureQuery
from geoserver.vectortile import CLUSTER_COUNT, TileRequest, mvt_value

_TRANSFORMERS: dict[int, Transformer] = {}


def _to_crs(epsg: int) -> Transformer:
    if epsg not in _TRANSFORMERS:
        _TRANSFORMERS[epsg] = Transformer.from_crs(4326, epsg, always_xy=True)
    return _TRANSFORMERS[epsg]


def fetch(store, layer: Layer, request: TileRequest, scope: Scope) -> Iterator[Feature]:
    """The features of the tile's buffered box within the scope, in id order, through the Store interface."""
    offset = 0
    while True:
        props = request.properties + tuple(prop for _, prop, _ in request.cluster_counts)
        page = store.query(layer.id, FeatureQuery(bbox=request.lonlat_bbox, properties=props, limit=MAX_LIMIT,
                                                  offset=offset, filter=request.filter,
                                                  datetime=request.datetime), scope)
        yield from page.features
        offset += len(page.features)
        if len(page.features) < MAX_LIMIT:
            return


def _tile_space(request: TileRequest, geometries: np.ndarray) -> np.ndarray:
    """Geometries moved from lon/lat into the tile's own coordinates (0..extent, y down)."""
    minx, miny, maxx, maxy = request.bounds
    sx = request.extent / (maxx - minx)
    sy = request.extent / (maxy - miny)
    tr = _to_crs(request.epsg)

    def move(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack(((np.asarray(x) - minx) * sx, (maxy - np.asarray(y)) * sy))

    return shapely.transform(geometries, move)


def render(store, layer: Layer, request: TileRequest, scope: Scope) -> bytes:
    """The MVT bytes of one layer of one tile (b'' when empty)."""
    return encode(layer, request, fetch(store, layer, request, scope))


def encode(layer: Layer, request: TileRequest, features: Iterable[Feature]) -> bytes:
    """The MVT bytes of one layer of one tile from the features (lon/lat) that may touch it."""
    feats = [f for f in features if f.geometry is not None]
    if not feats:
        return b""
    geoms = _tile_space(request, np.asarray([f.geometry for f in feats], dtype=object))
    if request.cluster_cell:
        out = _clusters(request, geoms, feats)
    else:
        out = _clipped(layer, request, feats, geoms)
    if not out:
        return b""
    return mapbox_vector_tile.encode(
        [{"name": layer.id, "features": out}],
        default_options={"extents": request.extent, "y_coord_down": True, "quantize_bounds": None,
                         "on_invalid_geometry": mapbox_vector_tile.encoder.on_invalid_geometry_make_valid},
    )


def _clipped(layer: Layer, request: TileRequest, feats: list[Feature], geoms: np.ndarray) -> list[dict]:
    if request.tolerance > 0 and not layer.geometry_type.endswith("Point"):
        geoms = shapely.make_valid(shapely.simplify(geoms, request.tolerance, preserve_topology=False))
    b = request.buffer
    lo, hi = -b, request.extent + b
    if layer.geometry_type.endswith("LineString"):
        # Lines are cut, not noded (a track crossing itself stays one line), snapped to the integer grid,
        # and stripped of repeated and collinear vertices -- what ST_AsMVTGeom does.
        geoms = shapely.set_precision(shapely.clip_by_rect(geoms, lo, lo, hi, hi), 1.0, mode="pointwise")
        geoms = shapely.simplify(geoms, 0.0, preserve_topology=False)
    else:
        geoms = shapely.intersection(geoms, box(lo, lo, hi, hi), grid_size=1.0)
    out = []
    for feature, geom in zip(feats, geoms, strict=True):
        geom = _keep_dimension(layer, geom)
        if geom is None:
            continue
        props = {p: mvt_value(feature.properties.get(p)) for p in request.properties}
        out.append({"geometry": geom, "id": feature.id,
                    "properties": {k: v for k, v in props.items() if v is not None}})
    return out


def _keep_dimension(layer: Layer, geom):
    """The parts of the layer's own dimension (clipping can leave slivers of a lower one), or None."""
    if geom is None or geom.is_empty:
        return None
    want = {"Point": 0, "LineString": 1, "Polygon": 2}[layer.geometry_type.removeprefix("Multi")]
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if shapely.get_dimensions(g) == want]
        if not parts:
            return None
        geom = shapely.union_all(parts)
    if shapely.get_dimensions(geom) != want or geom.is_empty:
        return None
    return geom


def _clusters(request: TileRequest, geoms: np.ndarray, feats: list[Feature]) -> list[dict]:
    xy = shapely.get_coordinates(geoms)
    ext, cell = request.extent, request.cluster_cell
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < ext) & (xy[:, 1] >= 0) & (xy[:, 1] < ext)
    flags = [np.array([f.properties.get(prop) in values for f in feats], dtype=float)[inside]
             for _, prop, values in request.cluster_counts]
    xy = xy[inside]
    if not len(xy):
        return []
    cells = np.floor(xy / cell).astype(np.int64)
    keys, inverse, counts = np.unique(cells[:, 1] * (ext // cell + 1) + cells[:, 0], return_inverse=True,
                                      return_counts=True)
    sx = np.bincount(inverse, weights=xy[:, 0]) / counts
    sy = np.bincount(inverse, weights=xy[:, 1]) / counts
    sums = [np.bincount(inverse, weights=f) for f in flags]
    names = [name for name, _, _ in request.cluster_counts]
    return [{"geometry": shapely.Point(np.floor(x + 0.5), np.floor(y + 0.5)),
             "properties": {CLUSTER_COUNT: int(n), **{name: int(s[i]) for name, s in zip(names, sums, strict=True)}}}
            for i, (x, y, n) in enumerate(zip(sx, sy, counts, strict=True))]
