"""The alarm lifecycle (告警处置): raised -> acknowledged -> resolved, and an alarm turned into a dispatch event
(异常转事件) -- each change one transaction with its timeline row and its change-log row.

The rule evaluation (layers/alarm_eval.py) raises, repeats and auto-resolves through the writes here; people
act through `act`. A `dispatch` grant on the alarm's township (geoserver/access.py: operators, admins, the
township's leaders) allows every action; others who may read the alarm get 403, the rest 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry

from geoserver.access import Principal, Scope, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, PreconditionFailed
from geoserver.features import Feature
from geoserver.store import Store
from layers import dispatch, rules
from layers.alarm_rules import STATE, Rule, now, storable
from layers.events import PRIORITIES
from layers.sites import METRIC_ZH, METRICS

LAYER = "alarms"
TIMELINE = "alarm_timeline"
OPEN = ("raised", "acknowledged")
ACTIONS = {"ack": (("raised",), "acknowledged"), "resolve": (OPEN, "resolved"), "to-event": (OPEN, None)}
BODY_FIELDS = {"ack": ("note",), "resolve": ("note",), "to-event": ("note", "type", "title", "priority")}
MAX_NOTE = 4000
# The event type of an alarm turned into an event, when neither the body nor the rule names one.
EVENT_TYPE_OF_KIND = {"smoke": "fire_hazard", "temperature": "fire_hazard", "electric_fire": "fire_hazard",
                      "water_quality": "water_pollution", "air": "other", "waste_bin": "garbage",
                      "camera": "public_security"}
PRIORITY_OF_LEVEL = {"critical": "urgent", "warning": "high", "info": "normal"}


def add_timeline(store: Store, alarm_id: int, actor: str | None, action: str, *, from_status: str | None = None,
                 to_status: str | None = None, note: str | None = None, data: dict | None = None,
                 at: datetime | None = None) -> dict[str, Any]:
    """Append one timeline row (call inside the transaction that makes the change)."""
    return store.add_row(TIMELINE, {"alarm_id": alarm_id, "at": at or now(), "actor": actor, "action": action,
                                    "from_status": from_status, "to_status": to_status, "note": note,
                                    "data": data})


def timeline(store: Store, catalog: Catalog, principal: Principal, alarm_id: int) -> list[dict[str, Any]]:
    """The timeline of an alarm the principal may read (NotFound otherwise), oldest first."""
    store.get(LAYER, alarm_id, scope_for(principal, catalog.get(LAYER), "read"))
    return store.rows(TIMELINE, {"alarm_id": alarm_id}, order_by=("at",))


# -- the writes of the rule evaluation (inside its transaction) -------------------------------------------
def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:.6g}"


def message(rule: Rule, site: dict[str, Any], x: float | None, silent_since: datetime | None = None) -> str:
    """What the command screen shows of a newly raised alarm, in the county's language (the sample's alarms
    read the same way): the site, what was measured, the limit crossed, the rule."""
    who = f"{site.get('name') or '站点'}（{site.get('site_code') or site.get('id')}）"
    metric = METRIC_ZH.get(rule.metric or "", rule.metric or "数据")
    if rule.no_data:
        since = silent_since.isoformat().replace("+00:00", "Z") if silent_since else "?"
        return f"{who}{_span(rule.for_seconds)}无{metric}（上次 {since}）[{rule.name}]"
    unit = METRICS.get(site.get("kind"), {}).get(rule.metric or "", "")
    unit = f"{unit}/分钟" if rule.on_rate else unit
    what = f"{metric}{'变化率' if rule.on_rate else ''}{_fmt(x)}{unit}"
    side = "高于" if rule.high is not None and x is not None and x > rule.high else "低于"
    return f"{who}{what}，{side}阈值{_fmt(rule.limit_crossed(x) if x is not None else None)}{unit} [{rule.name}]"


def _span(seconds: float | None) -> str:
    """A silence as people say it: 90 -> 1.5分钟, 7200 -> 2小时."""
    if not seconds:
        return ""
    for size, word in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if seconds >= size:
            return f"{seconds / size:.3g}{word}"
    return f"{seconds:g}秒"


def new_alarm(rule: Rule, site: dict[str, Any], *, x: float | None, count: int, at: datetime,
              silent_since: datetime | None = None) -> dict[str, Any]:
    """The properties of a new open alarm of `rule` at `site` (a dict of its id, kind, name, code, township,
    grid)."""
    kind = "site_offline" if rule.no_data else ("rate" if rule.on_rate else "threshold")
    return {"alarm_kind": kind, "site_id": site["id"], "site_kind": site.get("kind"), "metric": rule.metric,
            "value": x, "threshold": None if x is None else rule.limit_crossed(x), "level": rule.severity,
            "status": "raised", "message": message(rule, site, x, silent_since), "raised_at": at,
            "rule_id": rule.id, "count": count, "peak": x, "last_value": x,
            "last_at": silent_since if rule.no_data else at,
            "township_code": site.get("township_code"), "grid_code": site.get("grid_code")}


def raise_timeline(rule: Rule, props: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The timeline row of a raise (without its alarm id)."""
    return {"at": at, "action": "raise", "from_status": None, "to_status": "raised", "note": props["message"],
            "data": {"rule_id": rule.id, "value": props["value"], "count": props["count"]}}


def raise_alarm(store: Store, rule: Rule, site: dict[str, Any], geometry: BaseGeometry, *, x: float | None,
                count: int, at: datetime, actor: str | None, silent_since: datetime | None = None) -> Feature:
    """Insert a new open alarm of `rule` at `site` (a dict of its id, kind, name, code, township, grid)."""
    props = new_alarm(rule, site, x=x, count=count, at=at, silent_since=silent_since)
    [alarm] = store.insert(LAYER, [Feature(None, geometry, props)], Scope.everything())
    add_timeline(store, alarm.id, actor, **raise_timeline(rule, props, at))
    return alarm


def repeated(rule: Rule, props: dict[str, Any], values: list[tuple[float, datetime]]) -> tuple[dict[str, Any],
                                                                                                 dict[str, Any]]:
    """An open alarm seen again: the changes bringing its count, last value and time, and peak up to date,
    and its `repeat` timeline row (without its alarm id)."""
    peak = props.get("peak")
    for x, _ in values:
        if peak is None or rule.excess(x) > rule.excess(peak):
            peak = x
    last, last_at = values[-1]
    count = int(props.get("count") or 0) + len(values)
    changes = {"count": count, "peak": peak, "last_value": last, "last_at": last_at}
    row = {"at": last_at, "action": "repeat", "from_status": props.get("status"), "to_status": props.get("status"),
           "note": None, "data": {"readings": len(values), "count": count, "last_value": last, "peak": peak}}
    return changes, row


def auto_resolved(props: dict[str, Any], x: float | None, at: datetime) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An open alarm whose clear condition holds (its rule resolves by itself): the changes and the
    `auto-resolve` timeline row; None if it is no longer open."""
    status = props.get("status")
    if status not in OPEN:
        return None
    return ({"status": "resolved", "resolved_at": at},
            {"at": at, "action": "auto-resolve", "from_status": status, "to_status": "resolved",
             "note": "the clear condition holds", "data": {"value": x}})


# -- what people do ---------------------------------------------------------------------------------------
def allowed_now(alarm: Feature) -> list[str]:
    """The actions legal on the alarm as it is."""
    status = alarm.properties.get("status")
    out = [name for name, (sources, _) in ACTIONS.items() if status in sources]
    if alarm.properties.get("event_id") is not None and "to-event" in out:
        out.remove("to-event")
    return out


def _body(action: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    unknown = sorted(set(body) - set(BODY_FIELDS[action]))
    if unknown:
        raise BadInput(f"unknown field {str(unknown[0])[:64]!r}; {action} takes {', '.join(BODY_FIELDS[action])}",
                       parameter=str(unknown[0])[:64])
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE or not storable(note)):
        raise BadInput(f"note must be text of at most {MAX_NOTE} characters (no NUL)", parameter="note")
    for name in ("type", "title"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200
                                  or not storable(value)):
            raise BadInput(f"{name} must be non-empty text of at most 200 characters (no NUL)", parameter=name)
    if body.get("priority") is not None and body["priority"] not in PRIORITIES:
        raise BadInput(f"priority must be one of {', '.join(PRIORITIES)}", parameter="priority")
    return body


def _lock_state(store: Store, alarm: Feature) -> dict[str, Any] | None:
    """The (site, rule) state of a rule's alarm, locked (the evaluation takes the same lock first)."""
    p = alarm.properties
    if p.get("rule_id") is None or p.get("site_id") is None:
        return None
    found = store.rows(STATE, {"site_id": p["site_id"], "rule_id": p["rule_id"]}, limit=1, for_update=True)
    return found[0] if found else None


def act(store: Store, catalog: Catalog, principal: Principal, alarm_id: int, action: str, body: Any) -> Feature:
    """Do `action` (ack, resolve, to-event) on an alarm as `principal`, in one transaction; returns the alarm.

    Raises:
        NotFound: no such alarm, or not in the principal's read scope; an unknown action.
        Forbidden: the principal may not act on alarms of this township.
        Conflict: the action is not legal now (the message lists those that are).
        BadInput: a bad body (naming the field), an unknown or retired event type.
    """
    if action not in ACTIONS:
        raise NotFound(f"no action {str(action)[:64]!r}; actions: {', '.join(ACTIONS)}", parameter="action")
    body = _body(action, body)
    layer = catalog.get(LAYER)
    with store.transaction(actor=principal.username):
        alarm = store.get(LAYER, alarm_id, scope_for(principal, layer, "read"))
        if not scope_for(principal, layer, "dispatch").allows(alarm.properties.get("township_code")):
            raise Forbidden(f"only a dispatcher of this township may {action} this alarm", parameter="action")
        state = _lock_state(store, alarm)
        alarm = store.get(LAYER, alarm_id, Scope.everything())  # as it is under the lock
        status = alarm.properties.get("status")
        legal = allowed_now(alarm)
        if action not in legal:
            why = f"it is linked to event {alarm.properties['event_id']}" if status in OPEN else f"it is {status}"
            raise Conflict(f"cannot {action} alarm {alarm_id}: {why}; allowed now: "
                           f"{', '.join(legal) or 'nothing (it is resolved)'}", parameter="action")
        at = now()
        target = ACTIONS[action][1] or ("acknowledged" if status == "raised" else status)
        changes: dict[str, Any] = {"status": target}
        data: dict[str, Any] = {}
        if target == "acknowledged" and status == "raised":
            changes["acknowledged_at"] = at
        if target == "resolved":
            changes["resolved_at"] = at
            if state is not None and state.get("alarm_id") == alarm_id:  # the next crossing raises anew
                store.update_rows(STATE, {"id": state["id"]}, {"alarm_id": None, "count": 0, "crossed_at": None})
        if action == "to-event":
            event = _to_event(store, principal, alarm, body, at)
            changes["event_id"] = data["event_id"] = event.id
        try:
            updated = store.update(LAYER, alarm_id, Feature(alarm_id, None, changes), Scope.everything(),
                                   partial=True, if_match=alarm.etag())
        except PreconditionFailed:
            raise Conflict(f"alarm {alarm_id} changed while you acted on it; reload it and retry",
                           parameter="action") from None
        add_timeline(store, alarm_id, principal.username, action, from_status=status, to_status=target,
                     note=body.get("note"), data=data or None, at=at)
        return updated


def _to_event(store: Store, principal: Principal, alarm: Feature, body: dict[str, Any], at: datetime) -> Feature:
    """Report a dispatch event for an alarm through the same path as POST /collections/events/items: at the
    site's location, with the alarm's facts; its timeline names the alarm."""
    p = alarm.properties
    geometry = alarm.geometry
    site_kind = p.get("site_kind")
    if p.get("site_id") is not None:
        try:
            site = store.get("monitoring_sites", p["site_id"], Scope.everything())
            geometry, site_kind = site.geometry, site.properties.get("kind") or site_kind
        except NotFound:
            pass  # the site is gone: the alarm's own point
    rule_type = None
    if p.get("rule_id") is not None:
        found = store.rows("alarm_rules", {"id": p["rule_id"]}, limit=1)
        rule_type = found[0]["event_type"] if found else None
    kind = body.get("type") or rule_type or EVENT_TYPE_OF_KIND.get(site_kind or "", "other")
    facts = {k: p.get(k) for k in ("alarm_kind", "site_id", "metric", "value", "threshold", "peak", "count", "level")
             if p.get(k) is not None}
    raised = p.get("raised_at")
    description = "; ".join([f"alarm {alarm.id}: {p.get('message') or ''}".strip(),
                             *(f"{k} {v}" for k, v in facts.items()),
                             f"raised {raised.isoformat() if raised else '?'}"])
    if body.get("note"):
        description += f"; {body['note']}"
    title = body.get("title") or (p.get("message") or f"alarm {alarm.id}")[:200]
    event = Feature(None, geometry, {
        "title": title, "type": kind, "source": "sensor", "reported_at": at, "reporter": principal.username,
        "priority": body.get("priority") or PRIORITY_OF_LEVEL.get(p.get("level") or "", "normal"),
        "description": description[:4000]})
    stored = rules.create(store, principal, store.catalog.get("events"), event)
    dispatch.add_timeline(store, stored.id, principal.username, "from-alarm", to_status=stored.properties.get("status"),
                          note=f"from alarm {alarm.id}", data={"alarm_id": alarm.id, **facts})
    return stored
