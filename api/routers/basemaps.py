"""Raster base maps over HTTP: OGC API – Tiles map tiles, plain XYZ, and WMTS 1.0.0 (KVP and RESTful)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from basemaps import wmts
from basemaps.render import FORMATS, TileFormat, render_tile, tile_format
from basemaps.sources import RasterRegistry
from tiles.tms import WEB_MERCATOR, get_tms, tms_ids

# Base maps carry no township data: public, and cacheable by anyone in between.
CACHE = {"Cache-Control": "public, max-age=3600"}


def _registry(request: Request) -> RasterRegistry:
    return request.app.state.rasters


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


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

    def tile_response(self, request: Request, source: str, tms: str, z: int, row: int, col: int,
                      fmt: TileFormat) -> Response:
        """One rendered tile (the source and matrix set are checked before any pixels are read)."""
        raster = _registry(request).get(source)
        body = render_tile(raster, get_tms(tms), z, row, col, fmt)
        return Response(body, media_type=fmt.media_type, headers=CACHE)

    def register_routes(self) -> None:
        """Register every route of the group."""
        router = self.router

        @router.get("/collections/{source}/map/tiles")
        def tilesets(request: Request, source: str) -> JSONResponse:
            """The map tilesets of a raster source, one per tile matrix set."""
            _registry(request).get(source)
            base = _base_url(request)
            return JSONResponse({"tilesets": [self._tileset(base, source, t) for t in tms_ids()]})

        @router.get("/collections/{source}/map/tiles/{tms}")
        def tileset(request: Request, source: str, tms: str) -> JSONResponse:
            """OGC API – Tiles tileset metadata of a raster source in one matrix set."""
            raster = _registry(request).get(source)
            get_tms(tms)
            doc = self._tileset(_base_url(request), source, tms)
            west, south, east, north = raster.bounds
            doc.update(title=raster.title, boundingBox={
                "lowerLeft": [west, south], "upperRight": [east, north],
                "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"})
            return JSONResponse(doc)

        @router.get("/collections/{source}/map/tiles/{tms}/{z}/{row}/{col}")
        def map_tile(request: Request, source: str, tms: str, z: int, row: int, col: int,
                     f: str | None = None) -> Response:
            """A map tile; the format from `f` (png, jpeg, webp), else Accept, else PNG."""
            fmt = negotiate(f, request.headers.get("accept"))
            return self.tile_response(request, source, tms, z, row, col, fmt)

        @router.get("/basemaps/{source}/{z}/{x}/{y}.{ext}")
        def xyz_tile(request: Request, source: str, z: int, x: int, y: int, ext: str) -> Response:
            """A plain XYZ (WebMercatorQuad) tile; the suffix names the format."""
            return self.tile_response(request, source, WEB_MERCATOR, z, y, x, tile_format(ext, "format"))

        @router.get("/wmts")
        def wmts_kvp(request: Request) -> Response:
            """WMTS KVP: SERVICE=WMTS&REQUEST=GetCapabilities|GetTile."""
            req = wmts.parse_kvp(request.query_params)
            if req is None:
                return self._capabilities(request)
            return self.tile_response(request, req.layer, req.tms, req.z, req.row, req.col, req.format)

        @router.get("/wmts/1.0.0/WMTSCapabilities.xml")
        def wmts_capabilities(request: Request) -> Response:
            """WMTS RESTful capabilities."""
            return self._capabilities(request)

        @router.get("/wmts/1.0.0/{layer}/{style}/{tms}/{z}/{row}/{col}.{ext}")
        def wmts_tile(request: Request, layer: str, style: str, tms: str, z: int, row: int, col: int,
                      ext: str) -> Response:
            """WMTS RESTful GetTile (the one style is `default`)."""
            return self.tile_response(request, layer, tms, z, row, col, tile_format(ext, "format"))

    def _capabilities(self, request: Request) -> Response:
        matrix_sets = {t: get_tms(t) for t in tms_ids()}
        body = wmts.capabilities(_registry(request), matrix_sets, _base_url(request))
        return Response(body, media_type="application/xml")

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
