"""OGC API - Tiles, TileJSON and the MapLibre style: parse, call tiles.TileService, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import get_principal
from api.links import base_url
from api.ogc_params import parse_datetime, parse_filter
from api.session import VARY_CALLER
from geoserver.access import Principal
from geoserver.vectortile import TileFilter
from tiles import metadata
from tiles.service import TileResult, TileService
from tiles.style import maplibre_style
from tiles.tms import WEB_MERCATOR, get_tms, tms_document

MVT = metadata.MVT
COMBINED_TITLE = "onemap: every layer"


def _service(request: Request) -> TileService:
    return request.app.state.tiles


def tile_answer(result: TileResult, if_none_match: str | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a tile: 204 when empty, 304 for a matching If-None-Match, else the MVT.

    The route and the cached-tile fast path (api/tile_hits.py) both answer with it, so they cannot differ.
    """
    headers = {"Cache-Control": result.cache_control, "Vary": VARY_CALLER}
    if result.empty:
        return 204, headers, b""
    headers["ETag"] = result.etag
    inm = if_none_match
    if inm and (inm.strip() == "*" or result.etag in (t.strip() for t in inm.split(","))):
        return 304, headers, b""
    headers["Content-Type"] = MVT
    return 200, headers, result.content


def tile_response(request: Request, result: TileResult) -> Response:
    """The tile answer as a Response."""
    status, headers, body = tile_answer(result, request.headers.get("if-none-match"))
    return Response(body, status_code=status, headers=headers)


def tile_filter(request: Request) -> TileFilter | None:
    """The `filter` (CQL2 text or JSON, `filter-lang`) and `datetime` of a collection tile request, parsed as
    the items parse them; None when neither is given."""
    params = request.query_params
    interval = parse_datetime(params["datetime"]) if params.get("datetime") else None
    filt = None
    if params.get("filter"):
        filt = parse_filter(params["filter"], params.get("filter-lang"), params.get("filter-crs"))
    elif params.get("filter-lang") or params.get("filter-crs"):
        parse_filter("true", params.get("filter-lang"), params.get("filter-crs"))  # validates them
    return TileFilter(filt, interval) if filt is not None or interval is not None else None


async def _tile(request: Request, principal: Principal, collection: str | None, tms: str, z: int, row: int,
                col: int, *, heatmap: bool = False) -> Response:
    """A memory hit answers on the event loop; a miss is built in the thread pool."""
    svc = _service(request)
    job = svc.prepare(principal, collection, tms, z, col, row, heatmap=heatmap,
                      where=tile_filter(request) if collection else None)
    result = svc.cached(job) or await run_in_threadpool(svc.render, job)
    return tile_response(request, result)


class TilesFactory:
    """Registers the tile routes on its own APIRouter; the principal dependency is pluggable."""

    def __init__(self, principal=get_principal) -> None:
        self.router = APIRouter(tags=["tiles"])
        self.principal = principal
        self.register()

    def register(self) -> None:
        """Add every route."""
        r, who = self.router, Depends(self.principal)

        @r.get("/tileMatrixSets")
        def list_tms(request: Request) -> dict:
            """The tile matrix sets we serve."""
            return metadata.tile_matrix_sets(base_url(request))

        @r.get("/tileMatrixSets/{tms}")
        def one_tms(tms: str) -> dict:
            """One tile matrix set as OGC TMS 2.0 JSON."""
            return tms_document(tms)

        @r.get("/collections/{collection}/tiles")
        def collection_tilesets(request: Request, collection: str, principal: Principal = who) -> dict:
            """The tilesets of one collection."""
            layer, _ = _service(request).layer(principal, collection)
            return metadata.tilesets(base_url(request), layer.title, layer.id)

        @r.get("/collections/{collection}/tiles/{tms}")
        def collection_tileset(request: Request, collection: str, tms: str, principal: Principal = who) -> dict:
            """Tileset metadata of one collection in one TMS."""
            svc = _service(request)
            layer, _ = svc.layer(principal, collection)
            get_tms(tms)
            return metadata.tileset(base_url(request), layer.title, tms, [layer], svc.plan, layer.id)

        @r.get("/collections/{collection}/tiles/{tms}/tilejson.json")
        def collection_tilejson(request: Request, collection: str, tms: str, principal: Principal = who) -> dict:
            """TileJSON 3.0 of one collection."""
            svc = _service(request)
            layer, scope = svc.layer(principal, collection)
            get_tms(tms)
            bounds = metadata.bounds_of(svc.extents, [(layer, scope)])
            return metadata.tilejson(base_url(request), layer.title, tms, [layer], svc.plan, bounds, layer.id)

        @r.get("/collections/{collection}/tiles/{tms}/{z}/{row}/{col}", response_class=Response,
               responses={200: {"content": {MVT: {}}}, 204: {"description": "no feature in this tile"}})
        async def collection_tile(request: Request, collection: str, tms: str, z: int, row: int, col: int,
                                  principal: Principal = who) -> Response:
            """One tile of one collection, within the caller's townships; `filter` (CQL2) and `datetime` keep
            only the matching features (clusters count only those), as on the items."""
            return await _tile(request, principal, collection, tms, z, row, col)

        @r.get("/tiles")
        def combined_tilesets(request: Request) -> dict:
            """The tilesets of the combined (every layer) tiles."""
            return metadata.tilesets(base_url(request), COMBINED_TITLE, None)

        @r.get("/tiles/{tms}")
        def combined_tileset(request: Request, tms: str, principal: Principal = who) -> dict:
            """Tileset metadata of the combined tiles in one TMS."""
            svc = _service(request)
            get_tms(tms)
            layers = svc.tile_layers(principal)
            return metadata.tileset(base_url(request), COMBINED_TITLE, tms, layers, svc.plan, None)

        @r.get("/tiles/{tms}/tilejson.json")
        def combined_tilejson(request: Request, tms: str, principal: Principal = who) -> dict:
            """TileJSON 3.0 of every layer the caller may read."""
            svc = _service(request)
            get_tms(tms)
            readable = svc.readable(principal)
            bounds = metadata.bounds_of(svc.extents, readable)
            return metadata.tilejson(base_url(request), COMBINED_TITLE, tms, svc.tile_layers(principal), svc.plan,
                                     bounds, None)

        @r.get("/tiles/{tms}/{z}/{row}/{col}", response_class=Response,
               responses={200: {"content": {MVT: {}}}, 204: {"description": "no feature in this tile"}})
        async def combined_tile(request: Request, tms: str, z: int, row: int, col: int,
                                principal: Principal = who) -> Response:
            """One tile holding every layer the caller may read at that zoom."""
            return await _tile(request, principal, None, tms, z, row, col)

        @r.get("/styles/onemap.json")
        def style(request: Request, principal: Principal = who) -> dict:
            """The MapLibre style of the one-map (the layers this caller may read)."""
            svc = _service(request)
            readable = svc.readable(principal)
            bounds = metadata.bounds_of(svc.extents, readable)
            center = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 10]
            url = f"{base_url(request)}/tiles/{WEB_MERCATOR}/tilejson.json"
            rasters = getattr(request.app.state, "rasters", None)
            return maplibre_style(svc.tile_layers(principal), url, center, base=base_url(request),
                                  rasters=rasters.ids if rasters is not None else (),
                                  raster_bounds={s.id: s.bounds for s in rasters} if rasters is not None else None)
