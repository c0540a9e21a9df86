"""Patrols over HTTP: start, stop, upload fixes (gzip accepted, bounded). Parse, call layers/, serialise."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from geoserver.access import Principal
from geoserver.errors import BadInput, NotFound
from geoserver.geojson import to_geojson
from layers import patrol_work

router = APIRouter(tags=["Patrols"])
MAX_BODY = 64 * 1024
MAX_UPLOAD = 8 * 1024 * 1024  # an upload, after gunzip (20,000 fixes with every field fit in ~4 MB)
GEOJSON = "application/geo+json"


async def _json_body(request: Request, limit: int, *, required: bool) -> Any:
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        if len(raw) > limit:
            raise BadInput(f"the body must be at most {limit} bytes", parameter="body")
        inflate = zlib.decompressobj(wbits=31)
        try:
            raw = inflate.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise BadInput(f"the body is not valid gzip: {exc}", parameter="Content-Encoding") from None
        if len(raw) > limit or inflate.unconsumed_tail:
            raise BadInput(f"the body must be at most {limit} bytes once unzipped", parameter="body")
    elif encoding not in ("identity", ""):
        raise BadInput(f"Content-Encoding must be gzip or identity; got {encoding!r}", parameter="Content-Encoding")
    if len(raw) > limit:
        raise BadInput(f"the body must be at most {limit} bytes", parameter="body")
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


def _patrol_id(value: str) -> int:
    try:
        pid = int(value)
    except ValueError:
        raise NotFound(f"no patrol {value!r}", parameter="patrolId") from None
    if not 0 < pid < 2**63:
        raise NotFound(f"no patrol {value!r}", parameter="patrolId")
    return pid


def _dumps(body: Any, status: int = 200, media_type: str = "application/json", **headers: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_iso), status_code=status,
                    media_type=media_type, headers=headers)


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)


@router.post("/patrols", status_code=201, response_class=Response,
             responses={201: {"content": {GEOJSON: {}}, "description": "The patrol started."}})
async def start_patrol(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Start a patrol: `{"grid_code", "task_id"?, "mode"?, "started_at"?}`; returns the patrol feature."""
    body = await _json_body(request, MAX_BODY, required=True)
    patrol = await run_in_threadpool(patrol_work.start, request.app.state.store, request.app.state.catalog,
                                     principal, body)
    return _dumps(to_geojson(patrol), 201, GEOJSON, Location=f"/collections/patrols/items/{patrol.id}",
                  ETag=patrol.etag())


@router.post("/patrols/{patrol_id}/stop", response_class=Response,
             responses={200: {"content": {GEOJSON: {}}, "description": "The patrol stopped."}})
async def stop_patrol(patrol_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Stop your patrol (optionally `{"ended_at"}`); 409 if it has ended already."""
    body = await _json_body(request, MAX_BODY, required=False)
    patrol = await run_in_threadpool(patrol_work.stop, request.app.state.store, request.app.state.catalog,
                                     principal, _patrol_id(patrol_id), body)
    return _dumps(to_geojson(patrol), media_type=GEOJSON, ETag=patrol.etag())


@router.post("/patrols/{patrol_id}/points")
async def upload_points(patrol_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Upload fixes of your patrol: `{"points": [{"id", "time", "lon", "lat", "accuracy", "speed", "heading",
    "altitude", "battery"}]}` (gzip accepted); answers each point accepted, duplicate or rejected (reason)."""
    pid = _patrol_id(patrol_id)
    body = await _json_body(request, MAX_UPLOAD, required=True)
    result = await run_in_threadpool(patrol_work.upload, request.app.state.store, request.app.state.catalog,
                                     principal, pid, body)
    return _dumps(result)
