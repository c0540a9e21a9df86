"""The dispatch centre over HTTP: event actions, timelines and event types. Parse, call layers/, serialise."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.ogc_params import parse_items
from geoserver.access import Principal
from geoserver.errors import BadInput, NotFound
from geoserver.geojson import to_geojson
from layers import dispatch, event_types, grid_teams, stats

router = APIRouter(tags=["Event dispatch"])
MAX_BODY = 64 * 1024
GEOJSON = "application/geo+json"


async def _json_body(request: Request, *, required: bool, max_body: int = MAX_BODY) -> Any:
    raw = await request.body()
    if len(raw) > max_body:
        raise BadInput(f"the body must be at most {max_body} bytes", parameter="body")
    if not raw.strip():
        if required:
            raise BadInput("a JSON body is required", parameter="body")
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", ""):
        raise BadInput(f"Content-Type must be application/json; got {ctype!r}", parameter="Content-Type")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadInput(f"the body is not valid JSON: {exc}", parameter="body") from None


def _event_id(value: str) -> int:
    try:
        fid = int(value)
    except ValueError:
        raise NotFound(f"no event {value!r}", parameter="eventId") from None
    if not 0 < fid < 2**63:
        raise NotFound(f"no event {value!r}", parameter="eventId")
    return fid


def _dumps(body: Any, status: int = 200, media_type: str = "application/json", **headers: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str), status_code=status,
                    media_type=media_type, headers=headers)


@router.post("/events/{event_id}/actions/{action}", response_class=Response,
             responses={200: {"content": {GEOJSON: {}}, "description": "The updated event."},
                        422: {"description": "relocate: the new point lies outside the county."}})
async def act(event_id: str, action: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Do a dispatch action on an event (accept, reject, merge, dispatch, start, handle, verify, rework, close,
    escalate, supervise, relocate) with a JSON body (`note`, `assignee`, `department`, `into`; `lon`/`lat` or a
    GeoJSON Point `geometry` to relocate); returns the event. 409 lists the actions allowed now; If-Match is
    honoured (412); a relocation outside the county is 422."""
    body = await _json_body(request, required=False)
    store, catalog = request.app.state.store, request.app.state.catalog
    event = await run_in_threadpool(dispatch.act, store, catalog, principal, _event_id(event_id), action, body,
                                    if_match=request.headers.get("if-match"))
    return _dumps(to_geojson(event), media_type=GEOJSON, ETag=event.etag())


@router.get("/events/{event_id}/timeline")
def event_timeline(event_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Every step of an event, oldest first (404 if you may not read the event)."""
    fid = _event_id(event_id)
    rows = dispatch.timeline(request.app.state.store, request.app.state.catalog, principal, fid)
    return _dumps({"event": fid, "timeline": [
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
    body = await _json_body(request, required=True)
    row = await run_in_threadpool(event_types.create_type, request.app.state.store, principal, body)
    return _dumps(row, 201, Location=f"/event-types/{row['code']}")


@router.put("/event-types/{code}")
async def replace_event_type(code: str, request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """Replace an event type's definition (admins); `"retired": true` retires it."""
    body = await _json_body(request, required=True)
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
    body = await _json_body(request, required=True)
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
