"""Alarm rules, alarm actions and timelines, alarm statistics over HTTP. Parse, call layers/, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.bodies import json_body, json_response, path_id
from api.ogc_params import parse_items
from api.routers.events import GEOJSON
from geoserver.access import Principal
from geoserver.errors import BadInput
from geoserver.geojson import to_geojson
from layers import alarm_lifecycle, alarm_rules, alarm_stats
from layers.alarms import ALARM_LEVELS
from layers.events import PRIORITIES
from layers.sites import SITE_KINDS

router = APIRouter(tags=["Alarms"])
ITEM_PARAMS = ("filter", "filter-lang", "filter-crs", "bbox", "bbox-crs", "datetime")
_NUMBER = {"type": "number", "nullable": True}
_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "nullable": True}
_RULE_BODY = {"type": "object", "additionalProperties": False, "required": ["condition"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": alarm_rules.MAX_NAME},
    "site_kind": {"type": "string", "enum": list(SITE_KINDS)},
    "site_id": {"type": "integer", "minimum": 1, "nullable": True,
                "description": "An override of the kind's rule for this one site."},
    "metric": {"type": "string", "nullable": True},
    "condition": {"type": "string", "enum": list(alarm_rules.CONDITIONS)},
    "threshold": {**_NUMBER, "description": "above/below/rate_*: the raise limit (rate: per minute)."},
    "clear": {**_NUMBER, "description": "The clear limit (hysteresis); the threshold when left out."},
    "band": {**_PAIR, "description": "outside: [low, high]."},
    "clear_band": {**_PAIR, "description": "outside: clears inside [low, high] (within band)."},
    "for_readings": {"type": "integer", "minimum": 1, "maximum": alarm_rules.MAX_READINGS},
    "for_seconds": {"type": "number", "minimum": 0, "maximum": alarm_rules.MAX_SECONDS, "nullable": True},
    "severity": {"type": "string", "enum": list(ALARM_LEVELS)},
    "auto_resolve": {"type": "boolean"}, "enabled": {"type": "boolean"},
    "event_type": {"type": "string", "nullable": True}}}
_ACTION_BODY = {"type": "object", "additionalProperties": False, "properties": {
    "note": {"type": "string", "maxLength": alarm_lifecycle.MAX_NOTE},
    "type": {"type": "string", "description": "to-event: the event type."},
    "title": {"type": "string", "maxLength": 200, "description": "to-event: the event's title."},
    "priority": {"type": "string", "enum": list(PRIORITIES), "description": "to-event: the event's priority."}}}


def _body(schema: dict, required: bool = True) -> dict:
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


@router.get("/alarm-rules", responses={403: {"description": "Only operators and admins see the rules."}})
def list_alarm_rules(request: Request, site_kind: str | None = None, site_id: str | None = None,
                     metric: str | None = None, principal: Principal = Depends(get_principal)) -> Response:
    """Every alarm rule (per site kind, and per-site overrides), optionally of one kind, site or metric."""
    sid = None
    if site_id is not None:
        try:
            sid = int(site_id)
        except ValueError:
            raise BadInput("site_id must be an integer", parameter="site_id") from None
        if not 0 < sid < 2**63:
            raise BadInput("site_id must be a site id", parameter="site_id")
    rules = alarm_rules.list_rules(request.app.state.store, principal, site_kind=site_kind, site_id=sid,
                                   metric=metric)
    return json_response({"alarm_rules": rules})


@router.get("/alarm-rules/{rule_id}", responses={403: {"description": "Only operators and admins see the rules."}})
def get_alarm_rule(rule_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """One alarm rule."""
    return json_response(alarm_rules.get_rule(request.app.state.store, principal, path_id(rule_id, "alarm rule", "ruleId")))


@router.post("/alarm-rules", status_code=201, responses={403: {"description": "Only admins write rules."}},
             openapi_extra=_body(_RULE_BODY))
async def create_alarm_rule(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Add a rule (admins): `site_kind` (or `site_id` for one site), `metric`, `condition` (above, below,
    outside, rate_above, rate_below, no_data), `threshold`/`clear` or `band`/`clear_band`, `for_readings`,
    `for_seconds`, `severity`, `auto_resolve`, `enabled`, `event_type`, `name`."""
    body = await json_body(request, required=True)
    rule = await run_in_threadpool(alarm_rules.create_rule, request.app.state.store, principal, body)
    return json_response(rule, 201, Location=f"/alarm-rules/{rule['id']}")


@router.put("/alarm-rules/{rule_id}", responses={403: {"description": "Only admins write rules."}},
            openapi_extra=_body(_RULE_BODY))
async def replace_alarm_rule(rule_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Replace a rule (admins); its sites' counting starts afresh, open alarms stay open."""
    rid = path_id(rule_id, "alarm rule", "ruleId")
    body = await json_body(request, required=True)
    rule = await run_in_threadpool(alarm_rules.replace_rule, request.app.state.store, principal, rid, body)
    return json_response(rule)


@router.delete("/alarm-rules/{rule_id}", status_code=204, responses={
    403: {"description": "Only admins write rules."}, 409: {"description": "The rule has open alarms."}})
def delete_alarm_rule(rule_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Delete a rule (admins); one with open alarms is 409 (resolve them or disable the rule)."""
    alarm_rules.delete_rule(request.app.state.store, principal, path_id(rule_id, "alarm rule", "ruleId"))
    return Response(status_code=204)


@router.post("/alarms/{alarm_id}/actions/{action}", response_class=Response, responses={
    200: {"content": {GEOJSON: {}}, "description": "The updated alarm."},
    403: {"description": "You may read the alarm but not act on it."},
    409: {"description": "The action is not legal now; the message lists those that are."}},
             openapi_extra=_body(_ACTION_BODY, required=False))
async def act_on_alarm(alarm_id: str, action: str, request: Request,
                       principal: Principal = Depends(get_principal)) -> Response:
    """Acknowledge (`ack`), `resolve` or turn into a dispatch event (`to-event`: optional `type`, `title`,
    `priority`) an alarm, with an optional `note`; returns the alarm."""
    aid = path_id(alarm_id, "alarm", "alarmId")
    body = await json_body(request, required=False)
    store, catalog = request.app.state.store, request.app.state.catalog
    alarm = await run_in_threadpool(alarm_lifecycle.act, store, catalog, principal, aid, action, body)
    return json_response(to_geojson(alarm), media_type=GEOJSON, ETag=alarm.etag())


@router.get("/alarms/{alarm_id}/timeline")
def alarm_timeline(alarm_id: str, request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Every change of an alarm, oldest first (404 if you may not read the alarm)."""
    aid = path_id(alarm_id, "alarm", "alarmId")
    rows = alarm_lifecycle.timeline(request.app.state.store, request.app.state.catalog, principal, aid)
    return json_response({"alarm": aid, "timeline": [{k: v for k, v in r.items() if k != "alarm_id"} for r in rows]})


@router.get("/stats/alarms")
def alarm_statistics(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Alarm counts grouped by `group_by` (township_code, grid_code, site_kind, metric, level, status,
    alarm_kind, day, week, month; comma-separated, at most 3) and open now -- within your scope, for the same
    `filter`, `bbox` and `datetime` the items take."""
    params = dict(request.query_params)
    group_by = tuple(g.strip() for g in params.pop("group_by", "").split(",") if g.strip())
    unknown = sorted(set(params) - set(ITEM_PARAMS))
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0][:64]!r}", parameter=unknown[0][:64])
    parsed = parse_items(request.app.state.catalog.get("alarms"), params)
    return json_response(alarm_stats.alarm_stats(request.app.state.store, request.app.state.catalog, principal,
                                          parsed.query, group_by))
