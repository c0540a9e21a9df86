"""The `heatmap` tile layer: H3 hexagons of events and alarms with their counts, at a resolution set by the zoom.

Each tile counts, within the caller's read scope on each counted layer, the features of every hexagon that
touches the tile (the query box is the tile grown by two hexagon widths, so a hexagon across the tile's edge is
counted whole), and draws those hexagons with `h3`, `count`, `layer` (which layer it counts: `events` or
`alarms`, one polygon each where both have features) and `resolution`. Counts are those of GET /heatmap.
"""

from __future__ import annotations

import math
from functools import lru_cache

import h3
import numpy as np
from pyproj import Transformer

from geoserver.access import Principal, Scope, readable_layers
from geoserver.catalog import Catalog, Layer, Property
from geoserver.changes import Change
from geoserver.extents import ExtentCache
from geoserver.features import FeatureQuery
from geoserver.store import Store
from geoserver.vectortile import TileRequest
from layers.heatmap import HEAT_LAYERS, cell_counts
from tiles.cache import TileCache
from tiles.hexagon_mvt import encode_polygons

HEATMAP = "heatmap"
TILE_LAYER = Layer(
    id=HEATMAP, title="Heat map: events and alarms by H3 hexagon", geometry_type="Polygon",
    properties=(Property("h3", "string", "H3 cell"), Property("count", "integer", "Features in the cell"),
                Property("layer", "string", "Layer counted"), Property("resolution", "integer", "H3 resolution")),
    has_grid=False, locate_on_write=False, min_zoom=6, max_zoom=18, live=True)
# County (zooms 9-10) -> resolution 7, township (11-12) -> 8, grid (13 and up) -> 9, 10.
ZOOM_RESOLUTIONS = ((8, 6), (10, 7), (12, 8), (13, 9))
FINEST = 10
KM_PER_DEGREE = 111.32
# Hexagons of one resolution differ in size across the globe (pentagon distortion): at most about twice the
# mean area, so 1.5 mean edges bound any edge.
EDGE_SLACK = 1.5
# A tile's counting box over at least this share of the layer's extent counts the whole layer instead (the exact
# per-row box test costs about four times the plain scan of a row).
COVERS_MOST = 0.25
# The count ramp of the style (counts are per hexagon; the finer the zoom, the smaller the numbers).
RAMP = (1, "#ffffb2", 5, "#fecc5c", 20, "#fd8d3c", 100, "#f03b20", 500, "#bd0026")


@lru_cache(maxsize=8)
def _to_crs(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


def resolution_at(z: int) -> int:
    """The H3 resolution drawn at zoom `z`."""
    for top, resolution in ZOOM_RESOLUTIONS:
        if z <= top:
            return resolution
    return FINEST


def reach_degrees(resolution: int, lat: float) -> tuple[float, float]:
    """(lon, lat) degrees that hold two hexagon widths of `resolution` at latitude `lat`."""
    km = 4 * EDGE_SLACK * h3.average_hexagon_edge_length(resolution, unit="km")
    dlat = km / KM_PER_DEGREE
    return dlat / max(math.cos(math.radians(min(abs(lat), 89.0))), 0.01), dlat


def _grow(bbox: tuple[float, float, float, float], resolution: int) -> tuple[float, float, float, float]:
    w, s, e, n = bbox
    dx, dy = reach_degrees(resolution, max(abs(s), abs(n)))
    return max(w - dx, -180.0), max(s - dy, -90.0), min(e + dx, 180.0), min(n + dy, 90.0)


def _covers_most(box: tuple[float, ...], extent: tuple[float, ...]) -> bool:
    """True when `box` covers at least COVERS_MOST of `extent` (lon/lat degrees; a point extent counts as covered)."""
    w, s, e, n = max(box[0], extent[0]), max(box[1], extent[1]), min(box[2], extent[2]), min(box[3], extent[3])
    if w > e or s > n:
        return False
    area = (extent[2] - extent[0]) * (extent[3] - extent[1])
    return area == 0 or (e - w) * (n - s) >= COVERS_MOST * area


class HeatmapTiles:
    """Builds the heatmap layer of one tile through Store.aggregate, and keeps the tile cache honest."""

    def __init__(self, store: Store, catalog: Catalog, extents: ExtentCache) -> None:
        self.store = store
        self.extents = extents
        self.counted = [catalog.get(i) for i in HEAT_LAYERS if i in catalog and catalog.get(i).h3_cells]

    def sources(self, principal: Principal) -> tuple[tuple[Layer, Scope], ...]:
        """The counted layers the principal may read, with the scopes applied before counting."""
        return tuple(readable_layers(principal, self.counted))

    def render(self, sources: tuple[tuple[Layer, Scope], ...], request: TileRequest) -> bytes:
        """The MVT bytes of the heatmap layer of one tile (b'' when no hexagon touches it)."""
        resolution = resolution_at(request.z)
        grown = _grow(request.lonlat_bbox, resolution)
        rings, props = [], []
        for layer, scope in sources:
            # A box over most of the layer (county tiles) filters little but costs an exact test per row (ST_Intersects
            # made a county tile 4x slower than the plain GROUP BY): then every row is counted, the cells outside
            # the tile are simply not drawn.
            seen = self.extents.extent(layer.id, scope).bbox
            query = FeatureQuery(bbox=None if seen is None or _covers_most(grown, seen) else grown)
            counts = sorted(cell_counts(self.store, layer, scope, query, resolution).items())
            for (cell, n), ring in zip(counts, self._rings(request, [c for c, _ in counts]), strict=True):
                if ring is not None:
                    rings.append(ring)
                    props.append({"h3": cell, "count": n, "layer": layer.id, "resolution": resolution})
        return encode_polygons(HEATMAP, request.extent, rings, props)

    @staticmethod
    def _rings(request: TileRequest, cells: list[str]) -> list[np.ndarray | None]:
        """Each cell's boundary in tile units, None for a cell whose box misses the tile's buffered box."""
        if not cells:
            return []
        lonlat = [np.array([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
        w, s, e, n = request.lonlat_bbox
        inside = [r[:, 0].max() >= w and r[:, 0].min() <= e and r[:, 1].max() >= s and r[:, 1].min() <= n
                  for r in lonlat]
        sizes = [len(r) for r in lonlat]
        xs, ys = _to_crs(request.epsg).transform(*np.concatenate(lonlat).T)
        minx, miny, maxx, maxy = request.bounds
        tx = (np.asarray(xs) - minx) * request.extent / (maxx - minx)
        ty = (maxy - np.asarray(ys)) * request.extent / (maxy - miny)
        parts = np.split(np.column_stack((tx, ty)), np.cumsum(sizes)[:-1])
        return [p if keep else None for p, keep in zip(parts, inside, strict=True)]

    def invalidator(self, cache: TileCache):
        """A change-log consumer dropping the heatmap tiles a change to a counted layer may alter."""
        counted = {layer.id for layer in self.counted}

        def on_change(change: Change) -> None:
            if change.layer_id not in counted:
                return
            for bbox in (change.before, change.after):
                if bbox is not None:  # the coarsest hexagon drawn reaches furthest
                    cache.invalidate(HEATMAP, _grow(bbox, ZOOM_RESOLUTIONS[0][1]))

        return on_change


def style_layers(source: str) -> list[dict]:
    """MapLibre fill layers of the heat map, one per counted layer, hidden until the viewer shows them."""
    colour = ["interpolate", ["linear"], ["get", "count"], *RAMP]
    return [{"id": f"heatmap-{layer_id}", "type": "fill", "source": source, "source-layer": HEATMAP,
             "minzoom": TILE_LAYER.min_zoom, "filter": ["==", ["get", "layer"], layer_id],
             "layout": {"visibility": "none"},
             "paint": {"fill-color": colour, "fill-opacity": 0.6, "fill-outline-color": "#ffffff"}}
            for layer_id in HEAT_LAYERS]
