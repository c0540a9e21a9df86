"""Patrols over HTTP: start, stop, upload fixes (gzip accepted, bounded). Parse, call layers/, serialise."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.bodies import iso, json_body, json_response, path_id
from geoserver.access import Principal
from geoserver.geojson import to_geojson
from layers import patrol_work

router = APIRouter(tags=["Patrols"])
MAX_UPLOAD = 8 * 1024 * 1024  # an upload, after gunzip (20,000 fixes with every field fit in ~4 MB)
GEOJSON = "application/geo+json"


PROBLEM_ONLY = {"content": {"application/problem+json": {}}}


@router.post("/patrols", status_code=201, response_class=Response, responses={
    201: {"content": {GEOJSON: {}}, "description": "The patrol started."},
    400: {**PROBLEM_ONLY, "description": "A malformed body, or a grid you may not work in (`parameter` names it)."},
    409: {**PROBLEM_ONLY, "description": "You have a patrol open already: its id is the problem's `open_patrol`."}})
async def start_patrol(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Start a patrol: `{"grid_code", "task_id"?, "mode"?, "started_at"?}`; returns the patrol feature.

    A worker has one open patrol at a time. While one is active (in any grid) a start is 409 Conflict, a
    problem+json whose `open_patrol` member is the open patrol's id: a phone that lost the answer to its
    start goes on with that patrol (`POST /patrols/{id}/points`), or stops it (`POST /patrols/{id}/stop`)
    before starting another. Nothing is created by a refused start."""
    body = await json_body(request, required=True)
    patrol = await run_in_threadpool(patrol_work.start, request.app.state.store, request.app.state.catalog,
                                     principal, body)
    return json_response(to_geojson(patrol), 201, GEOJSON, Location=f"/collections/patrols/items/{patrol.id}",
                         ETag=patrol.etag())


@router.post("/patrols/{patrol_id}/stop", response_class=Response,
             responses={200: {"content": {GEOJSON: {}}, "description": "The patrol stopped."}})
async def stop_patrol(patrol_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Stop your patrol (optionally `{"ended_at"}`); 409 if it has ended already."""
    body = await json_body(request, required=False)
    patrol = await run_in_threadpool(patrol_work.stop, request.app.state.store, request.app.state.catalog,
                                     principal, path_id(patrol_id, "patrol", "patrolId"), body)
    return json_response(to_geojson(patrol), media_type=GEOJSON, ETag=patrol.etag())


@router.post("/patrols/{patrol_id}/points")
async def upload_points(patrol_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Upload fixes of your patrol: `{"points": [{"id", "time", "lon", "lat", "accuracy", "speed", "heading",
    "altitude", "battery"}]}` (gzip accepted); answers each point accepted, duplicate or rejected (reason)."""
    pid = path_id(patrol_id, "patrol", "patrolId")
    body = await json_body(request, required=True, limit=MAX_UPLOAD)
    result = await run_in_threadpool(patrol_work.upload, request.app.state.store, request.app.state.catalog,
                                     principal, pid, body)
    try:  # a report line per fix: orjson writes it several times faster (times in UTC with Z, as iso does)
        return Response(orjson.dumps(result, default=iso, option=orjson.OPT_UTC_Z), media_type="application/json")
    except TypeError:  # a phone id past 64 bits
        return json_response(result)
