"""Heat maps (热力图): counts of events and alarms by H3 (v4) hexagon, within the caller's read scope.

The scope and the filter are applied inside the store's query before anything is counted (Store.aggregate
grouped by `h3:R`), so a leader's hexagon counts only his townships' features even where it straddles a border.
A hexagon's count is the number of matched features whose point lies in it (h3.latlng_to_cell at R).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import h3

from geoserver.access import Principal, Scope, read_scope
from geoserver.catalog import Catalog, Layer
from geoserver.errors import BadInput, NotFound
from geoserver.features import FeatureQuery
from geoserver.store import Store

HEAT_LAYERS = ("events", "alarms")
DEFAULT_RESOLUTION = 8
# One answer holds at most this many hexagons (about 8 MB of GeoJSON).
MAX_CELLS = 20_000
# A bbox that could hold more cells than this at the resolution asked is refused before any query: the
# combination is absurd whatever the data (a county is some 10^3 km^2: 10^6 cells is resolution 11 over it).
MAX_EXTENT_CELLS = 1_000_000
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Hexagon:
    """One H3 cell of a heat map: its id, the layer it counts and how many features fall in it."""

    h3: str
    layer: str
    count: int


def ring(cell: str) -> list[tuple[float, float]]:
    """The cell's boundary as lon/lat pairs, counter-clockwise (RFC 7946), not closed.

    h3 lists a boundary clockwise in (lat, lng) order, which is counter-clockwise once swapped to (lng, lat).
    """
    return [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]


def heat_layer(catalog: Catalog, principal: Principal, layer_id: str | None) -> tuple[Layer, Scope]:
    """The heat-mapped layer named and the caller's read scope on it.

    BadInput (naming `layer`) when it is missing or a collection without a heat map; NotFound when there is no
    such collection, or the caller may not read it (the same answer for both).
    """
    if not layer_id:
        raise BadInput(f"layer is required: one of {', '.join(HEAT_LAYERS)}", parameter="layer")
    if layer_id not in catalog:
        raise NotFound(f"no collection {layer_id[:80]!r} to make a heat map of", parameter="layer")
    layer = catalog.get(layer_id)
    try:
        scope = read_scope(principal, layer)
    except NotFound:
        raise NotFound(f"no collection {layer_id!r} to make a heat map of", parameter="layer") from None
    if layer_id not in HEAT_LAYERS or not layer.h3_cells:
        raise BadInput(f"layer {layer_id!r} has no heat map; one of {', '.join(HEAT_LAYERS)}", parameter="layer")
    return layer, scope


def parse_resolution(raw: str | int | None) -> int:
    """An H3 resolution 0-15 (default 8); BadInput naming `resolution` otherwise."""
    if raw is None or raw == "":
        return DEFAULT_RESOLUTION
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadInput(f"resolution must be an integer from 0 to 15; got {str(raw)[:40]!r}",
                       parameter="resolution") from None
    if not 0 <= value <= 15:
        raise BadInput(f"resolution must be from 0 to 15; got {value}", parameter="resolution")
    return value


def bbox_cells(bbox: tuple[float, float, float, float], resolution: int) -> float:
    """About how many cells of `resolution` a lon/lat bbox holds (its area over the mean cell area)."""
    w, s, e, n = bbox
    area = (EARTH_RADIUS_KM ** 2) * math.radians(max(e - w, 0.0)) * abs(
        math.sin(math.radians(min(n, 90.0))) - math.sin(math.radians(max(s, -90.0))))
    return area / h3.average_hexagon_area(resolution, unit="km^2")


def cell_counts(store: Store, layer: Layer, scope: Scope, query: FeatureQuery, resolution: int, *,
                limit: int | None = None) -> dict[str, int]:
    """H3 cell id -> how many features the query matches in it within the scope (counted in the store)."""
    rows = store.aggregate(layer.id, replace(query, limit=0, offset=0, sortby=()), scope,
                           (f"h3:{resolution}",), limit=limit)
    return {cell: n for (cell,), n in rows if cell is not None}


def heatmap(store: Store, catalog: Catalog, principal: Principal, layer_id: str | None, query: FeatureQuery,
            resolution: int) -> list[Hexagon]:
    """The hexagons of one layer's heat map for the caller, in cell-id order.

    BadInput naming `resolution` when the bbox could hold absurdly many cells at that resolution, or when
    more than MAX_CELLS hexagons would come back.
    """
    layer, scope = heat_layer(catalog, principal, layer_id)
    if query.bbox is not None and bbox_cells(query.bbox, resolution) > MAX_EXTENT_CELLS:
        raise BadInput(f"resolution {resolution} over this bbox makes about {bbox_cells(query.bbox, resolution):,.0f}"
                       f" cells (at most {MAX_EXTENT_CELLS:,}); choose a coarser resolution or a smaller bbox",
                       parameter="resolution")
    counts = cell_counts(store, layer, scope, query, resolution, limit=MAX_CELLS + 1)
    if len(counts) > MAX_CELLS:
        raise BadInput(f"resolution {resolution} gives more than {MAX_CELLS:,} hexagons here; choose a coarser "
                       f"resolution, a bbox or a filter", parameter="resolution")
    return [Hexagon(cell, layer.id, n) for cell, n in sorted(counts.items())]


def geojson_text(hexagons: Iterable[Hexagon], layer_id: str, resolution: int) -> str:
    """The GeoJSON FeatureCollection of a heat map: one Polygon feature per hexagon with `h3` and `count`.

    Written as text: json.dumps of the same dicts took twice as long as the count itself for 10^4 hexagons.
    Cell ids are hexadecimal and layer ids catalog names, so nothing here needs escaping.
    """
    parts = []
    total = 0
    for hx in hexagons:
        pts = ring(hx.h3)
        coords = ",".join(f"[{x:.7f},{y:.7f}]" for x, y in (*pts, pts[0]))
        parts.append(f'{{"type":"Feature","id":"{hx.h3}","geometry":{{"type":"Polygon","coordinates":[[{coords}]]}},'
                     f'"properties":{{"h3":"{hx.h3}","count":{int(hx.count)},"layer":"{hx.layer}",'
                     f'"resolution":{int(resolution)}}}}}')
        total += hx.count
    return (f'{{"type":"FeatureCollection","layer":"{layer_id}","resolution":{int(resolution)},"total":{total},'
            f'"numberReturned":{len(parts)},"features":[{",".join(parts)}]}}')
