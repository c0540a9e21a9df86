"""Patrol and visit tasks over HTTP: create, list, read, edit, act, report findings. Parse, call layers/,
serialise."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.bodies import json_response, path_id, read_json
from api.links import base_url
from geoserver import crs as crsmod
from geoserver import idempotency
from geoserver.access import Principal
from geoserver.errors import BadInput
from geoserver.geojson import from_geojson, to_geojson
from layers import task_work, tasks
from layers.task_tables import TASK_KINDS, TASK_STATUSES

router = APIRouter(tags=["Tasks"], responses={
    403: {"description": "The caller may not give, change or do this task."},
    409: {"description": "The task's state does not allow this now (the actions allowed are listed)."}})
GEOJSON = "application/geo+json"
JSON_TYPES = ("application/json", GEOJSON, "")

_NAME = {"type": "string", "minLength": 1, "maxLength": 64}
_OBJECT = {"type": "object", "additionalProperties": False, "required": ["layer", "fid"], "properties": {
    "layer": {"type": "string", "enum": list(tasks.VISITABLE)},
    "fid": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}}
_FIELDS = {
    "title": {"type": "string", "minLength": 1, "maxLength": tasks.MAX_TEXT},
    "description": {"type": "string", "maxLength": 4000},
    "kind": {"type": "string", "enum": list(TASK_KINDS)},
    "grid_code": _NAME, "township_code": _NAME, "assignee": _NAME,
    "due_at": {"type": "string", "format": "date-time"},
    "objects": {"type": "array", "maxItems": tasks.MAX_OBJECTS, "items": _OBJECT},
}
_TASK_BODY = {"type": "object", "additionalProperties": False, "required": ["title", "due_at"],
              "properties": _FIELDS}
_EDIT_BODY = {"type": "object", "additionalProperties": False,
              "properties": {k: _FIELDS[k] for k in tasks.EDITABLE}}
_ACTION_BODY = {"type": "object", "additionalProperties": False, "properties": {
    "note": {"type": "string", "maxLength": 4000}, "object": _OBJECT}}
_FINDING_BODY = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
    "type": {"type": "string", "enum": ["Feature"]}, "geometry": {"type": "object"},
    "properties": {"type": "object"}}}


def _body(schema: dict[str, Any], media: str = "application/json", required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {media: {"schema": schema}}}}


async def _json(request: Request, *, required: bool = True) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadInput("a JSON body is required", parameter="body")
        return {}
    if ctype not in JSON_TYPES:
        raise BadInput(f"Content-Type must be application/json; got {ctype!r}", parameter="Content-Type")
    return await read_json(request)


@router.get("/tasks", response_class=Response, responses={200: {"content": {"application/json": {}}}})
def list_tasks(request: Request, assignee: str | None = None, grid_code: str | None = None,
               township_code: str | None = None, status: str | None = None, kind: str | None = None,
               limit: int | None = None, offset: int | None = None,
               principal: Principal = Depends(get_principal)) -> Response:
    """Your tasks and your grid's (workers) or your townships' (leaders, operators): `assignee` (`me` for
    yours), `grid_code`, `township_code`, `status` (""" + ", ".join(TASK_STATUSES) + """), `kind`, `limit`,
    `offset`; soonest due first."""
    args = dict(request.query_params)
    return json_response(tasks.list_tasks(request.app.state.store, principal, args))


@router.post("/tasks", status_code=201, response_class=Response, openapi_extra=_body(_TASK_BODY),
             responses={201: {"content": {"application/json": {}}, "description": "The task, open."}})
async def create_task(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Give a task (dispatchers of its township): `title`, `due_at`, `grid_code` or `township_code`,
    `assignee`, `kind` (patrol or visit), `objects` to visit (`[{"layer", "fid"}]`), `description`."""
    tasks.scope_of(principal)
    body = await _json(request)
    task = await run_in_threadpool(tasks.create, request.app.state.store, request.app.state.catalog, principal, body)
    return json_response(task, 201, Location=f"{base_url(request)}/tasks/{task['id']}")


@router.get("/tasks/{task_id}", response_class=Response, responses={200: {"content": {"application/json": {}}}})
def get_task(task_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """One task, with its objects' visits and the events found on it (404 for a task you may not see)."""
    return json_response(tasks.get(request.app.state.store, request.app.state.catalog, principal, path_id(task_id, "task", "taskId")))


@router.patch("/tasks/{task_id}", response_class=Response, openapi_extra=_body(_EDIT_BODY),
              responses={200: {"content": {"application/json": {}}, "description": "The task as changed."}})
async def edit_task(task_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Change an open or started task's title, description, assignee, due_at or objects (dispatchers); its
    status changes only through its actions (409)."""
    tid = path_id(task_id, "task", "taskId")
    tasks.scope_of(principal)
    body = await _json(request)
    task = await run_in_threadpool(tasks.edit, request.app.state.store, request.app.state.catalog, principal, tid,
                                   body)
    return json_response(task)


@router.post("/tasks/{task_id}/actions/{action}", response_class=Response,
             openapi_extra=_body(_ACTION_BODY, required=False),
             responses={200: {"content": {"application/json": {}}, "description": "The task as it is now."}})
async def act(task_id: str, action: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Do a step of a task: `start`, `visit` (`{"object": {"layer", "fid"}}`), `complete`, `cancel`, each with
    an optional `note`; 409 lists the actions allowed now."""
    tid = path_id(task_id, "task", "taskId")
    tasks.scope_of(principal)
    body = await _json(request, required=False)
    task = await run_in_threadpool(task_work.act, request.app.state.store, request.app.state.catalog, principal, tid,
                                   action, body)
    return json_response(task)


@router.post("/tasks/{task_id}/findings", status_code=201, response_class=Response,
             openapi_extra=_body(_FINDING_BODY, GEOJSON),
             responses={201: {"content": {GEOJSON: {}}, "description": "The event reported."},
                        422: {"description": "The Idempotency-Key was used with another body."}})
async def report_finding(task_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Report what you found on your started task: an event (a GeoJSON Feature, as any report of an event)
    that names the task; `Idempotency-Key` honoured."""
    tid = path_id(task_id, "task", "taskId")
    tasks.scope_of(principal)
    store, catalog = request.app.state.store, request.app.state.catalog
    in_crs = crsmod.parse_crs(request.headers.get("content-crs", "").strip("<> ") or None, "Content-Crs")
    body = await _json(request)
    event = from_geojson(catalog.get("events"), body, in_crs)

    events_url = f"{base_url(request)}/collections/events/items"

    def report() -> dict[str, Any]:
        stored = task_work.report(store, catalog, principal, tid, event)
        return {"status": 201, "body": to_geojson(stored),
                "headers": {"ETag": stored.etag(), "Location": f"{events_url}/{stored.id}"}}

    header = request.headers.get(idempotency.HEADER)
    if header is None:
        written, replayed = await run_in_threadpool(report), False
    else:
        written, replayed = await run_in_threadpool(
            idempotency.run_once, store, principal.username, f"POST /tasks/{tid}/findings",
            idempotency.parse_key(header), idempotency.request_hash(body, in_crs), report)
    headers = {**written["headers"], **({"Idempotent-Replayed": "true"} if replayed else {})}
    return json_response(written["body"], written["status"], GEOJSON, **headers)


@router.get("/tasks/{task_id}/timeline", response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
def task_timeline(task_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Every step of a task, oldest first (404 for a task you may not see)."""
    tid = path_id(task_id, "task", "taskId")
    return json_response({"task": tid, "timeline": tasks.history(request.app.state.store, principal, tid)})
