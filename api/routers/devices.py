"""Devices (phones) and the tracker-app protocols: OsmAnd / Traccar Client and OwnTracks. Parse, call
layers/, serialise."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import BasicUnauthorized, get_principal, principal_of
from api.bodies import MAX_JSON, json_body, json_response, path_id
from geoserver.access import Principal
from geoserver.errors import BadInput, Unauthorized
from layers import devices, gps_protocols

router = APIRouter(tags=["Devices"])
JSON = "application/json"
PROBLEM_ONLY = {"content": {"application/problem+json": {}}}


@router.post("/devices", status_code=201, response_class=Response,
             responses={201: {"content": {JSON: {}}, "description": "The device, with its URL token (shown once)."},
                        409: {**PROBLEM_ONLY, "description": "The device id is registered already."}},
             openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
                 "type": "object", "required": ["device_id"], "properties": {
                     "device_id": {"type": "string", "minLength": 1, "maxLength": 100},
                     "name": {"type": "string", "maxLength": 200},
                     "username": {"type": "string", "description": "Owner (admins only; default: you)"}}}}}}})
async def register_device(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Register a phone: `{"device_id", "name"?}` (admins may add `username`); the answer carries the token
    for `/gps/osmand/{token}` and `/gps/owntracks/{token}`, shown this once."""
    body = await json_body(request, required=True)
    device = await run_in_threadpool(devices.register, request.app.state.store, principal, body)
    return json_response(device, 201, Location=f"/devices/{device['id']}")


@router.get("/devices", response_class=Response, responses={200: {"content": {JSON: {}},
                                                                  "description": "The devices."}})
async def list_devices(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Your devices (an admin's: every device); tokens are never shown again."""
    rows = await run_in_threadpool(devices.listing, request.app.state.store, principal)
    return json_response({"devices": rows})


@router.delete("/devices/{device_id}", status_code=204, response_class=Response,
               responses={204: {"description": "Deleted: its token stops at once."}})
async def delete_device(device_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Delete one of your devices (admins: any)."""
    await run_in_threadpool(devices.remove, request.app.state.store, principal, path_id(device_id, "device", "deviceId"))
    return Response(status_code=204)


# -- the tracker apps --------------------------------------------------------------------------------------
def _owner(request: Request, token: str | None, principal: Principal, device_id: str | None,
           parameter: str) -> tuple[Principal, dict[str, Any]]:
    """The device's owner and row: by the URL token, else the caller's own registered device."""
    store = request.app.state.store
    if token is not None:
        device = devices.by_token(store, token)
        user = store.get_user(device["username"])
        if user is None:
            raise Unauthorized("the device's account no longer exists", parameter="token")
        return principal_of(user), device
    if principal.is_anonymous:
        raise BasicUnauthorized("log in (HTTP Basic with your own credentials) or use the device's URL token",
                                parameter="Authorization")
    return principal, devices.of_owner(store, principal, device_id, parameter)


async def _osmand(request: Request, token: str | None, principal: Principal) -> Response:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == JSON:
            body = await json_body(request, required=True)
            device_id, fix = gps_protocols.traccar_json(body)
            return await _take(request, token, principal, device_id, fix, "device_id")
        raw = await request.body()
        if len(raw) > MAX_JSON:
            raise BadInput(f"the body must be at most {MAX_JSON} bytes", parameter="body")
        if raw.strip():
            if ctype not in ("application/x-www-form-urlencoded", "text/plain", ""):
                raise BadInput(f"Content-Type must be application/json or a form; got {ctype!r}",
                               parameter="Content-Type")
            try:
                params.update(parse_qsl(raw.decode("utf-8"), max_num_fields=50))
            except (UnicodeDecodeError, ValueError) as exc:
                raise BadInput(f"the body is not a form: {exc}", parameter="body") from None
    device_id, fix = gps_protocols.osmand(params)
    return await _take(request, token, principal, device_id, fix, "id")


async def _take(request: Request, token: str | None, principal: Principal, device_id: str | None, fix: Any,
                parameter: str) -> Response:
    state = request.app.state

    def run() -> dict[str, Any]:
        owner, device = _owner(request, token, principal, device_id, parameter)
        return gps_protocols.receive(state.store, state.catalog, owner, device, fix, state.settings.gps_autostart)

    return json_response(await run_in_threadpool(run))


_PROBLEMS = {
    401: {**PROBLEM_ONLY, "description": "No or bad credentials, or an unknown device token."},
    403: {**PROBLEM_ONLY, "description": "The device is another account's, or its owner may not patrol."},
    404: {**PROBLEM_ONLY, "description": "The device id is not registered."},
    409: {**PROBLEM_ONLY, "description": "The patrol ended while the fix was being taken: send it again."},
}
_NUMBER = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
OSMAND_QUERY = {"parameters": [
    {"name": name, "in": "query", "required": name in ("lat", "lon"), "description": text, "schema": schema}
    for name, text, schema in (
        ("id", "The device id registered at POST /devices (with HTTP Basic)", {"type": "string", "maxLength": 100}),
        ("lat", "Latitude (degrees)", _NUMBER), ("lon", "Longitude (degrees)", _NUMBER),
        ("timestamp", "Fix time: unix seconds (or milliseconds) or ISO 8601", {"type": "string"}),
        ("speed", "Speed (knots)", _NUMBER), ("bearing", "Heading (degrees)", _NUMBER),
        ("altitude", "Altitude (m)", _NUMBER), ("accuracy", "Accuracy (m)", _NUMBER),
        ("batt", "Battery (%)", _NUMBER))]}
OSMAND_OK = {200: {"content": {JSON: {}}, "description": "The fix was taken (or refused as an impossible jump)."},
             **_PROBLEMS}


@router.get("/gps/osmand", response_class=Response, responses=OSMAND_OK, openapi_extra=OSMAND_QUERY)
@router.post("/gps/osmand", response_class=Response, responses=OSMAND_OK, openapi_extra=OSMAND_QUERY)
async def osmand(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """A fix from OsmAnd or Traccar Client, signed in with HTTP Basic: query string `id`, `lat`, `lon`,
    `timestamp`, `speed` (knots), `bearing`, `altitude`, `accuracy`, `batt` (GET or POST, or a form), or
    Traccar Client's JSON `{"device_id", "location": {"timestamp", "coords": {…}, "battery": {"level"}}}`."""
    return await _osmand(request, None, principal)


@router.get("/gps/osmand/{token}", response_class=Response, responses=OSMAND_OK, openapi_extra=OSMAND_QUERY)
@router.post("/gps/osmand/{token}", response_class=Response, responses=OSMAND_OK, openapi_extra=OSMAND_QUERY)
async def osmand_token(token: str, request: Request) -> Response:
    """The same, for an app that can only put the device's token (from POST /devices) in the URL."""
    return await _osmand(request, token, Principal.anonymous())


async def _owntracks(request: Request, token: str | None, principal: Principal) -> Response:
    body = await json_body(request, required=True)
    device_id, fix = gps_protocols.owntracks(body, request.headers.get("x-limit-d"))
    if fix is not None:
        await _take(request, token, principal, device_id, fix, "tid")
    elif token is None and principal.is_anonymous:
        raise BasicUnauthorized("log in (HTTP Basic with your own credentials)", parameter="Authorization")
    return json_response([])


OWNTRACKS_OK = {200: {"content": {JSON: {}}, "description": "`[]`, as OwnTracks expects."}, **_PROBLEMS}
OWNTRACKS_BODY = {"requestBody": {"required": True, "content": {JSON: {"schema": {
    "type": "object", "required": ["_type"], "properties": {
        "_type": {"type": "string"}, "lat": {"type": "number"}, "lon": {"type": "number"},
        "tst": {"type": "integer"}, "acc": {"type": "number"}, "batt": {"type": "number"},
        "tid": {"type": "string"}, "vel": {"type": "number"}, "cog": {"type": "number"},
        "alt": {"type": "number"}, "topic": {"type": "string"}}}}}}}


@router.post("/gps/owntracks", response_class=Response, responses=OWNTRACKS_OK, openapi_extra=OWNTRACKS_BODY)
async def owntracks(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """A message from OwnTracks (HTTP mode, Basic with your credentials): `_type: location` with `lat`, `lon`,
    `tst`, `acc`, `batt`, `tid`, `vel` (km/h), `cog`, `alt`; the device is `X-Limit-D`, the topic's last part,
    or `tid`. Other message types are acknowledged and ignored. Answers `[]`."""
    return await _owntracks(request, None, principal)


@router.post("/gps/owntracks/{token}", response_class=Response, responses=OWNTRACKS_OK, openapi_extra=OWNTRACKS_BODY)
async def owntracks_token(token: str, request: Request) -> Response:
    """The same, with the device's token in the URL."""
    return await _owntracks(request, token, Principal.anonymous())
