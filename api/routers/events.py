"""The dispatch centre over HTTP: event actions, timelines and event types. Parse, call layers/, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.bodies import json_body, json_response, path_id
from api.ogc_params import parse_items
from geoserver.access import Principal
from geoserver.errors import BadInput
from geoserver.geojson import to_geojson
from layers import dispatch, event_types, grid_teams, stats

router = APIRouter(tags=["Event dispatch"])
GEOJSON = "application/geo+json"


@router.post("/events/{event_id}/actions/{action}", response_class=Response,
             responses={200: {"content": {GEOJSON: {}}, "description": "The updated event."},
                        422: {"description": "relocate: the new point lies outside the county."}})
async def act(event_id: str, action: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Do a dispatch action on an event (accept, reject, merge, dispatch, start, handle, verify, rework, close,
    escalate, supervise, relocate) with a JSON body (`note`, `assignee`, `department`, `into`; `lon`/`lat` or a
    GeoJSON Point `geometry` to relocate); returns the event. 409 lists the actions allowed now; If-Match is
    honoured (412); a relocation outside the county is 422."""
    body = await json_body(request, required=False)
    store, catalog = request.app.state.store, request.app.state.catalog
    event = await run_in_threadpool(dispatch.act, store, catalog, principal, path_id(event_id, "event", "eventId"), action, body,
                                    if_match=request.headers.get("if-match"))
    return json_response(to_geojson(event), media_type=GEOJSON, ETag=event.etag())


@router.get("/events/{event_id}/timeline")
def event_timeline(event_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Every step of an event, oldest first (404 if you may not read the event)."""
    fid = path_id(event_id, "event", "eventId")
    rows = dispatch.timeline(request.app.state.store, request.app.state.catalog, principal, fid)
    return json_response({"event": fid, "timeline": [
        {k: (v.isoformat().replace("+00:00", "Z") if hasattr(v, "isoformat") else v) for k, v in r.items()
         if k != "event_id"} for r in rows]})


@router.get("/event-types")
def list_event_types(request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """Every event type (retired ones too, marked)."""
    return {"event_types": event_types.list_types(request.app.state.store)}


@router.get("/event-types/{code}")
def get_event_type(code: str, request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """One event type."""
    return event_types.get_type(request.app.state.store, code)


@router.post("/event-types", status_code=201)
async def create_event_type(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Add an event type (admins)."""
    body = await json_body(request, required=True)
    row = await run_in_threadpool(event_types.create_type, request.app.state.store, principal, body)
    return json_response(row, 201, Location=f"/event-types/{row['code']}")


@router.put("/event-types/{code}")
async def replace_event_type(code: str, request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """Replace an event type's definition (admins); `"retired": true` retires it."""
    body = await json_body(request, required=True)
    return await run_in_threadpool(event_types.replace_type, request.app.state.store, principal, code, body)


@router.delete("/event-types/{code}", status_code=204)
def delete_event_type(code: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Delete an event type no event uses (admins); one in use is 409: retire it."""
    event_types.delete_type(request.app.state.store, principal, code)
    return Response(status_code=204)


@router.get("/grids/{code}/bindings")
def grid_bindings(code: str, request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """A grid's team and bound department accounts (404 for a grid you may not see)."""
    return {"grid_code": code, "bindings": grid_teams.bindings(request.app.state.store, request.app.state.catalog,
                                                               principal, code)}


@router.put("/grids/{code}/bindings")
async def replace_grid_bindings(code: str, request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """Replace a grid's team (admins): `{"bindings": [{"username", "role"}]}`."""
    body = await json_body(request, required=True)
    rows = await run_in_threadpool(grid_teams.replace_bindings, request.app.state.store, request.app.state.catalog,
                                   principal, code, body)
    return {"grid_code": code, "bindings": rows}


@router.get("/stats/events")
def event_statistics(request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """Event counts grouped by `group_by` (township_code, grid_code, type, source, status, priority, day,
    week, month; comma-separated, at most 3), overdue now, handling hours and on-time rate -- within your scope,
    for the same `filter`, `bbox` and `datetime` the items take."""
    params = dict(request.query_params)
    group_by = tuple(g.strip() for g in params.pop("group_by", "").split(",") if g.strip())
    layer = request.app.state.catalog.get("events")
    parsed = parse_items(layer, {k: v for k, v in params.items() if k in ("filter", "filter-lang", "filter-crs",
                                                                          "bbox", "bbox-crs", "datetime")})
    unknown = sorted(set(params) - {"filter", "filter-lang", "filter-crs", "bbox", "bbox-crs", "datetime"})
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0]!r}", parameter=unknown[0])
    return stats.event_stats(request.app.state.store, request.app.state.catalog, principal, parsed.query, group_by)
