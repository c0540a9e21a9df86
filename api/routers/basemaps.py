"""Raster base maps over HTTP: OGC API – Tiles map tiles, plain XYZ, and WMTS 1.0.0 (KVP and RESTful)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.links import base_url
from api.session import VARY_CALLER
from basemaps import outlines, wmts
from basemaps.render import FORMATS, TileFormat, render_tile, tile_format
from basemaps.sources import HANDLES_PER_FILE, RasterRegistry
from geoserver.access import Principal
from tiles.tms import WEB_MERCATOR, get_tms, tms_ids

# Base maps carry no township data: public, and cacheable by anyone in between.
CACHE = {"Cache-Control": "public, max-age=3600"}
# Outline tiles of a layer with township scope depend on who asks.
PRIVATE = {"Cache-Control": "private, max-age=300", "Vary": VARY_CALLER}
# Raster tiles are read and encoded by a few threads of their own, not by the app's pool of 40: GDAL and PROJ
# keep state per thread that touched them (~2-3 MB each), and the server's RSS crept up for as long as new
# threads of the big pool took their first imagery tile. As many as the open handles of a file (2 cores).
RASTER_THREADS = ThreadPoolExecutor(max_workers=HANDLES_PER_FILE, thread_name_prefix="onemap-raster")


def _registry(request: Request) -> RasterRegistry:
    return request.app.state.rasters


def negotiate(f: str | None, accept: str | None) -> TileFormat:
    """`f` wins; else the first image type in Accept we can make; else PNG (it keeps transparency)."""
    if f:
        return tile_format(f)
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        for fmt in FORMATS.values():
            if media == fmt.media_type:
                return fmt
    return FORMATS["png"]


class BasemapFactory:
    """Owns an APIRouter with the map-tile, XYZ and WMTS routes over the app's raster registry."""

    def __init__(self) -> None:
        self.router = APIRouter(tags=["base maps"])
        self.register_routes()

    async def tile_response(self, request: Request, principal: Principal, source: str, tms: str, z: int, row: int,
                            col: int, fmt: TileFormat) -> Response:
        """One rendered tile: a raster source, else an area layer's outlines within the caller's scope."""
        registry = _registry(request)
        matrix_set = get_tms(tms)
        if source in registry.ids:
            rendered = request.app.state.rendered_rasters
            key = (source, tms, z, row, col, fmt.name)
            body = rendered.get(key)
            if body is None:
                body = await asyncio.get_running_loop().run_in_executor(
                    RASTER_THREADS, render_tile, registry.get(source), matrix_set, z, row, col, fmt)
                rendered.put(key, body)
            return Response(body, media_type=fmt.media_type, headers=CACHE)
        if source not in request.app.state.catalog:
            registry.get(source)  # NotFound naming the raster sources
        layer, scope = outlines.layer_scope(request.app.state.catalog, principal, source)
        body = await run_in_threadpool(outlines.render_outlines, request.app.state.store, layer, scope, matrix_set,
                                       z, row, col, fmt)
        return Response(body, media_type=fmt.media_type, headers=CACHE if layer.public else PRIVATE)

    def register_routes(self) -> None:
        """Register every route of the group."""
        router, who = self.router, Depends(get_principal)

        @router.get("/collections/{source}/map/tiles")
        def tilesets(request: Request, source: str) -> JSONResponse:
            """The map tilesets of a raster source, one per tile matrix set."""
            _registry(request).get(source)
            base = base_url(request)
            return JSONResponse({"tilesets": [self._tileset(base, source, t) for t in tms_ids()]})

        @router.get("/collections/{source}/map/tiles/{tms}")
        def tileset(request: Request, source: str, tms: str) -> JSONResponse:
            """OGC API – Tiles tileset metadata of a raster source in one matrix set."""
            raster = _registry(request).get(source)
            get_tms(tms)
            doc = self._tileset(base_url(request), source, tms)
            west, south, east, north = raster.bounds
            doc.update(title=raster.title, boundingBox={
                "lowerLeft": [west, south], "upperRight": [east, north],
                "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"})
            return JSONResponse(doc)

        @router.get("/collections/{source}/map/tiles/{tms}/{z}/{row}/{col}")
        async def map_tile(request: Request, source: str, tms: str, z: int, row: int, col: int,
                           f: str | None = None, principal: Principal = who) -> Response:
            """A map tile; the format from `f` (png, jpeg, webp), else Accept, else PNG."""
            fmt = negotiate(f, request.headers.get("accept"))
            return await self.tile_response(request, principal, source, tms, z, row, col, fmt)

        @router.get("/basemaps/{source}/{z}/{x}/{y}.{ext}")
        async def xyz_tile(request: Request, source: str, z: int, x: int, y: int, ext: str,
                           principal: Principal = who) -> Response:
            """A plain XYZ (WebMercatorQuad) tile; the suffix names the format."""
            return await self.tile_response(request, principal, source, WEB_MERCATOR, z, y, x,
                                            tile_format(ext, "format"))

        @router.get("/wmts")
        async def wmts_kvp(request: Request, principal: Principal = who) -> Response:
            """WMTS KVP: SERVICE=WMTS&REQUEST=GetCapabilities|GetTile."""
            req = wmts.parse_kvp(request.query_params)
            if req is None:
                return await self._capabilities(request, principal)
            return await self.tile_response(request, principal, req.layer, req.tms, req.z, req.row, req.col,
                                            req.format)

        @router.get("/wmts/1.0.0/WMTSCapabilities.xml")
        async def wmts_capabilities(request: Request, principal: Principal = who) -> Response:
            """WMTS RESTful capabilities."""
            return await self._capabilities(request, principal)

        @router.get("/wmts/1.0.0/{layer}/{style}/{tms}/{z}/{row}/{col}.{ext}")
        async def wmts_tile(request: Request, layer: str, style: str, tms: str, z: int, row: int, col: int,
                            ext: str, principal: Principal = who) -> Response:
            """WMTS RESTful GetTile (the one style is `default`)."""
            wmts.check_style(style)
            return await self.tile_response(request, principal, layer, tms, z, row, col, tile_format(ext, "format"))

    async def _capabilities(self, request: Request, principal: Principal) -> Response:
        matrix_sets = {t: get_tms(t) for t in tms_ids()}
        layers = wmts.raster_layers(_registry(request)) + await run_in_threadpool(
            self._outline_layers, request, principal)
        body = wmts.capabilities(layers, matrix_sets, base_url(request))
        return Response(body, media_type="application/xml", headers={"Vary": VARY_CALLER})

    @staticmethod
    def _outline_layers(request: Request, principal: Principal) -> list[wmts.WmtsLayer]:
        extents = request.app.state.extents
        out = []
        for layer, scope in outlines.readable(request.app.state.catalog, principal):
            bbox = extents.extent(layer.id, scope).bbox
            if bbox is not None:
                out.append(wmts.WmtsLayer(layer.id, layer.title, bbox))
        return out

    @staticmethod
    def _tileset(base: str, source: str, tms: str) -> dict:
        url = f"{base}/collections/{source}/map/tiles/{tms}"
        return {
            "title": f"{source} ({tms})", "dataType": "map", "tileMatrixSetId": tms,
            "tileMatrixSetURI": f"{base}/tileMatrixSets/{tms}",
            "links": [
                {"rel": "self", "href": url, "type": "application/json"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "href": f"{base}/tileMatrixSets/{tms}",
                 "type": "application/json"},
                *({"rel": "item", "href": url + "/{tileMatrix}/{tileRow}/{tileCol}?f=" + fmt.name,
                   "type": fmt.media_type, "templated": True} for fmt in FORMATS.values()),
            ],
        }


router = BasemapFactory().router
