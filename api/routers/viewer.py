"""The one-map web page at /viewer/, with MapLibre served from node_modules (never a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

import viewer

STATIC = Path(viewer.__file__).resolve().parent / "static"
MAPLIBRE_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "maplibre-gl" / "dist"

router = APIRouter(include_in_schema=False)


@router.get("/viewer")
def viewer_redirect() -> RedirectResponse:
    """The page lives at /viewer/."""
    return RedirectResponse("/viewer/", status_code=308)


@router.get("/viewer/")
def viewer_page() -> FileResponse:
    """The one-map page."""
    return FileResponse(STATIC / "index.html", media_type="text/html")


def mount_viewer(app: FastAPI) -> None:
    """Serve the page's own assets and MapLibre GL JS (installed by `make npm`)."""
    app.mount("/viewer/static", StaticFiles(directory=STATIC), name="viewer-static")
    if MAPLIBRE_DIST.is_dir():
        app.mount("/viewer/vendor/maplibre", StaticFiles(directory=MAPLIBRE_DIST), name="maplibre")
