"""Open311 GeoReport v2 (/open311/v2/…) in JSON and the spec's XML; the api_key parameter is an API key of
ours, mapped to its account. Parse, call layers.open311, serialise."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import authenticate_api_key, get_principal
from geoserver.access import Principal
from geoserver.errors import BadInput, NotFound
from layers import open311

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])
MAX_FORM = 64 * 1024
FORMATS = ("json", "xml")
# What the OpenAPI document says these routes send (the suffix chooses) and which suffixes there are.
ANSWERS = {"content": {"application/json": {}, "application/xml": {}}}
FMT = Path(description="json or xml", json_schema_extra={"enum": list(FORMATS)})


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise NotFound(f"no format {fmt!r}; use .json or .xml", parameter="format")
    return fmt


def _render(rows: list[dict[str, Any]], fmt: str, root: str, item: str, status: int = 200) -> Response:
    if fmt == "json":
        return Response(json.dumps(rows, ensure_ascii=False), status_code=status, media_type="application/json")
    top = ET.Element(root)
    for row in rows:
        node = ET.SubElement(top, item)
        for key, value in row.items():
            ET.SubElement(node, key).text = "" if value is None else (
                str(value).lower() if isinstance(value, bool) else str(value))
    body = ET.tostring(top, encoding="unicode", xml_declaration=False)
    return Response('<?xml version="1.0" encoding="utf-8"?>' + body, status_code=status,
                    media_type="application/xml")


async def _caller(request: Request, principal: Principal, api_key: str | None) -> Principal:
    if api_key:
        return await run_in_threadpool(authenticate_api_key, request.app.state.store, api_key)
    return principal


@router.get("/services.{fmt}", response_class=Response, responses={200: ANSWERS})
def list_services(request: Request, fmt: str = FMT) -> Response:
    """The services (our event types) a request may name."""
    return _render(open311.services(request.app.state.store), _fmt(fmt), "services", "service")


@router.post("/requests.{fmt}", status_code=201, response_class=Response, responses={201: ANSWERS})
async def post_request(request: Request, fmt: str = FMT, principal: Principal = Depends(get_principal)) -> Response:
    """Report a service request (form-encoded as the spec has it, or JSON): service_code, lat, long,
    description, first_name, last_name, api_key."""
    fmt = _fmt(fmt)
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise BadInput(f"the request must be at most {MAX_FORM} bytes", parameter="body")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            form = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadInput("the body is not valid JSON", parameter="body") from None
        if not isinstance(form, dict):
            raise BadInput("the body must be a JSON object", parameter="body")
    else:
        form = dict((await request.form()).items())
    caller = await _caller(request, principal, form.get("api_key") or request.query_params.get("api_key"))
    row = await run_in_threadpool(open311.create_request, request.app.state.store, request.app.state.catalog,
                                  caller, form)
    return _render([row], fmt, "service_requests", "request", status=201)


@router.get("/requests.{fmt}", response_class=Response, responses={200: ANSWERS})
async def get_requests(request: Request, fmt: str = FMT, principal: Principal = Depends(get_principal)) -> Response:
    """Service requests the caller may see (service_request_id, service_code, start_date, end_date, status)."""
    fmt = _fmt(fmt)
    args = dict(request.query_params)
    caller = await _caller(request, principal, args.pop("api_key", None))
    rows = await run_in_threadpool(open311.list_requests, request.app.state.store, request.app.state.catalog,
                                   caller, args)
    return _render(rows, fmt, "service_requests", "request")


@router.get("/requests/{request_id}.{fmt}", response_class=Response, responses={200: ANSWERS})
async def get_request(request_id: str, request: Request, fmt: str = FMT,
                      principal: Principal = Depends(get_principal)) -> Response:
    """One service request (404 when the caller may not see it)."""
    fmt = _fmt(fmt)
    caller = await _caller(request, principal, request.query_params.get("api_key"))
    row = await run_in_threadpool(open311.get_request, request.app.state.store, request.app.state.catalog,
                                  caller, request_id)
    return _render([row], fmt, "service_requests", "request")
