"""OGC 3D Tiles 1.1 of the white model, the CesiumJS assets from our own node_modules, and a 3D page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.session import VARY_CALLER
from geoserver.access import Principal
from tiles.white_model import WhiteModelService

ROOT = Path(__file__).resolve().parents[2]
CESIUM_BUILD = ROOT / "node_modules" / "cesium" / "Build" / "Cesium"
PAGE = ROOT / "viewer" / "white_model.html"
# The tileset depends on who asks: caches may keep it for that caller only.
PRIVATE = {"Cache-Control": "private, max-age=60", "Vary": VARY_CALLER}


def _service(request: Request) -> WhiteModelService:
    return request.app.state.white_model


def _not_modified(request: Request, etag: str) -> bool:
    """If-None-Match names this version, or is `*` (any version: the resource exists), as on vector tiles."""
    inm = request.headers.get("if-none-match")
    return bool(inm) and (inm.strip() == "*" or etag in (t.strip() for t in inm.split(",")))


class Tiles3DFactory:
    """Registers the 3D Tiles routes on its own APIRouter; the principal dependency is pluggable."""

    def __init__(self, principal=get_principal) -> None:
        self.router = APIRouter(tags=["3D tiles"])
        self.principal = principal
        self.register()

    def register(self) -> None:
        """Add every route."""
        r, who = self.router, Depends(self.principal)

        @r.get("/3dtiles/buildings/tileset.json")
        async def tileset(request: Request, principal: Principal = who) -> Response:
            """The caller's white-model tileset (only the townships they may see)."""
            model = await run_in_threadpool(_service(request).model, principal)
            headers = {**PRIVATE, "ETag": model.etag}
            if _not_modified(request, model.etag):
                return Response(status_code=304, headers=headers)
            return JSONResponse(model.tileset, headers=headers)

        @r.get("/3dtiles/buildings/{tile_path}.glb")
        async def content(request: Request, tile_path: str, principal: Principal = who) -> Response:
            """One content tile (glTF 2.0 binary with building metadata)."""
            body, etag = await run_in_threadpool(_service(request).content, principal, tile_path)
            headers = {**PRIVATE, "ETag": etag}
            if _not_modified(request, etag):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type="model/gltf-binary", headers=headers)

        @r.get("/viewer/white-model.html", include_in_schema=False)
        def page() -> FileResponse:
            """A CesiumJS page showing the white model (no ion, no outside requests)."""
            return FileResponse(PAGE, media_type="text/html")


def mount_cesium(app: FastAPI) -> None:
    """Serve CesiumJS from node_modules at /viewer/vendor/cesium (installed by `make npm`), never a CDN."""
    if CESIUM_BUILD.is_dir():
        app.mount("/viewer/vendor/cesium", StaticFiles(directory=CESIUM_BUILD), name="cesium")
