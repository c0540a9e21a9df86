"""Heat maps over HTTP: GET /heatmap answers GeoJSON hexagons with counts. Parse, call layers/, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.ogc_params import parse_items
from api.routers.tiles import MVT, _tile
from geoserver.access import Principal
from geoserver.errors import BadInput
from layers import heatmap

router = APIRouter(tags=["Heat maps"])
GEOJSON = "application/geo+json"
QUERY_PARAMS = ("filter", "filter-lang", "filter-crs", "bbox", "bbox-crs", "datetime")
KNOWN = frozenset({"layer", "resolution", *QUERY_PARAMS})
PROBLEM = {"application/problem+json": {}}


@router.get("/heatmap", response_class=Response, responses={
    200: {"content": {GEOJSON: {}}, "description": "A FeatureCollection: one hexagon per occupied H3 cell, with its "
                                                  "`h3` id and `count` (and the `layer` it counts)."},
    404: {"content": PROBLEM, "description": "No such layer, or none the caller may read."}})
async def get_heatmap(
    request: Request,
    layer: str | None = Query(None, description="What to count: `events` or `alarms`."),
    resolution: str | None = Query(None, description="H3 resolution, 0-15 (default 8)."),
    datetime: str | None = Query(None, description="An instant or interval (`a/b`, `../b`, `a/..`) of the "
                                                   "layer's time; none: all time."),
    filter: str | None = Query(None, description="A CQL2 filter on the layer's properties, e.g. "
                                                 "`type = 'garbage' AND status <> 'closed'`."),
    filter_lang: str | None = Query(None, alias="filter-lang", description="cql2-text (default) or cql2-json."),
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy: only the features inside it."),
    principal: Principal = Depends(get_principal),
) -> Response:
    """Counts of the features of `layer` the caller may read by H3 hexagon, for the same `filter`, `bbox` and
    `datetime` the items take (the caller's townships are applied before counting)."""
    params = dict(request.query_params)
    unknown = sorted(set(params) - KNOWN)
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0][:40]!r}; /heatmap takes {', '.join(sorted(KNOWN))}",
                       parameter=unknown[0])
    catalog = request.app.state.catalog
    target, _ = heatmap.heat_layer(catalog, principal, params.get("layer"))
    res = heatmap.parse_resolution(params.get("resolution"))
    query = parse_items(target, {k: v for k, v in params.items() if k in QUERY_PARAMS}).query
    hexagons = await run_in_threadpool(heatmap.heatmap, request.app.state.store, catalog, principal, target.id,
                                       query, res)
    return Response(heatmap.geojson_text(hexagons, target.id, res), media_type=GEOJSON)


@router.get("/heatmap/tiles/{tms}/{z}/{row}/{col}", response_class=Response,
            responses={200: {"content": {MVT: {}}}, 204: {"description": "no hexagon in this tile"}})
async def heatmap_tile(request: Request, tms: str, z: int, row: int, col: int,
                       principal: Principal = Depends(get_principal)) -> Response:
    """The heat map's own tiles: the `heatmap` layer of the combined tiles alone (H3 hexagons of events and
    alarms with `h3`, `count`, `layer`, `resolution`; the resolution follows the zoom)."""
    return await _tile(request, principal, None, tms, z, row, col, heatmap=True)
