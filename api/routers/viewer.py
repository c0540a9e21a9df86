"""The one-map application at /viewer/: its page, its ES modules, MapLibre and ECharts from node_modules (never
a CDN), and /viewer/profile -- what the page needs to know about the caller (tools, home extent, townships)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from shapely.ops import polylabel
from starlette.concurrency import run_in_threadpool

import viewer
from api.auth import get_principal
from api.session import VARY_CALLER
from geoserver.access import Principal, Scope, readable_layers, scope_for
from geoserver.features import FeatureQuery
from layers import dispatch

STATIC = Path(viewer.__file__).resolve().parent / "static"
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR = {"maplibre": NODE_MODULES / "maplibre-gl" / "dist", "echarts": NODE_MODULES / "echarts" / "dist"}

router = APIRouter(include_in_schema=False)


@router.get("/viewer")
def viewer_redirect() -> RedirectResponse:
    """The page lives at /viewer/."""
    return RedirectResponse("/viewer/", status_code=308)


@router.get("/viewer/")
def viewer_page() -> FileResponse:
    """The one-map page."""
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def _label_point(geometry) -> list[float]:
    """Where a township's name is written: the pole of inaccessibility of its largest part (inside it, away
    from its edges) -- one label per township, not one per vector tile it crosses."""
    parts = getattr(geometry, "geoms", None) or [geometry]
    largest = max(parts, key=lambda g: g.area)
    try:
        point = polylabel(largest, tolerance=0.001)
    except Exception:  # a degenerate ring: any point inside will do
        point = largest.representative_point()
    return [round(point.x, 6), round(point.y, 6)]


def _townships(store) -> list[dict]:
    page = store.query("townships", FeatureQuery(limit=1000, properties=("township_code", "name", "name_zh"),
                                                 sortby=(("township_code", True),)), Scope.everything())
    return [{"code": f.properties["township_code"], "name": f.properties.get("name"),
             "name_zh": f.properties.get("name_zh"), "bbox": [round(v, 6) for v in f.geometry.bounds],
             "label": _label_point(f.geometry)}
            for f in page.features]


def profile(request: Request, principal: Principal) -> dict:
    """Who the caller is, which tools the page shows them, where their map starts, the townships to filter."""
    catalog, store = request.app.state.catalog, request.app.state.store
    readable = {layer.id: scope for layer, scope in readable_layers(principal, catalog)}

    def may(layer_id: str, action: str) -> bool:
        return layer_id in catalog and not scope_for(principal, catalog.get(layer_id), action).empty

    home = Scope.of(principal.townships) if principal.townships else Scope.everything()
    extent = request.app.state.extents.extent("townships", home).bbox
    townships = _townships(store)
    # Township names on the map: those of the townships layer the caller may read.
    seen = readable.get("townships")
    labels = [] if seen is None else [
        {"code": t["code"], "name": t["name"], "name_zh": t["name_zh"], "label": t["label"]} for t in townships
        if seen.unrestricted or t["code"] in (seen.townships or frozenset())]
    if readable.get("events") is not None and not readable["events"].unrestricted:
        mine = readable["events"].townships or frozenset()
        townships = [t for t in townships if t["code"] in mine]
    return {
        "username": None if principal.is_anonymous else principal.username,
        "role": principal.role,
        "townships": sorted(principal.townships),
        "grids": sorted(principal.grids),
        "department": principal.department,
        "home": list(extent) if extent else None,
        "township_list": townships,
        "township_labels": labels,
        "layers": [{"id": lid, "title": catalog.get(lid).title, "geometry_type": catalog.get(lid).geometry_type,
                    "time_field": catalog.get(lid).time_field, "live": catalog.get(lid).live,
                    "everywhere": sc.unrestricted} for lid, sc in readable.items()],
        "tools": {
            "events": "events" in readable,
            "dispatch": may("events", "dispatch"),
            "report": may("events", "create"),
            "alarms": "alarms" in readable,
            "alarm_actions": may("alarms", "dispatch"),  # POST /alarms/{id}/actions/{ack,resolve,to-event}
            "patrols": "patrols" in readable,
            "buildings": "buildings" in readable,
            "filter_townships": readable.get("events") is not None and readable["events"].unrestricted,
        },
        "transitions": [{"name": t.name, "sources": list(t.sources), "by": t.by}
                        for t in dispatch.TRANSITIONS.values()],
    }


@router.get("/viewer/profile")
async def viewer_profile(request: Request, principal: Principal = Depends(get_principal)) -> JSONResponse:
    """The caller as the page sees them (anonymous included): tools, home extent, township list."""
    body = await run_in_threadpool(profile, request, principal)
    return JSONResponse(body, headers={"Cache-Control": "private, no-store", "Vary": VARY_CALLER})


def mount_viewer(app: FastAPI) -> None:
    """Serve the page's own modules and the npm packages it loads (installed by `make npm`)."""
    app.mount("/viewer/static", StaticFiles(directory=STATIC), name="viewer-static")
    for name, path in VENDOR.items():
        if path.is_dir():
            app.mount(f"/viewer/vendor/{name}", StaticFiles(directory=path), name=f"viewer-{name}")
