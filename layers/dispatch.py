"""The event lifecycle (事件中心): who may move an event from which state to which, in one transaction with
its timeline row and its change-log row.

reported -> accepted (or rejected, or merged into another event) -> dispatched -> in_progress -> handled ->
verified (or back to in_progress: rework) -> closed. `escalate` (越级上报) and `supervise` (督办) keep the state
and may be done at any open state; so may `relocate` (move the point: routing runs again, layers/routing.py).
A `dispatch` grant on the event's township (geoserver/access.py) allows
accept, reject, merge, dispatch, verify, rework, close, escalate, supervise and relocate; the assignee starts and
handles (and may escalate). Nothing about an event changes without a timeline row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geoserver.access import Principal, Scope, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, PreconditionFailed
from geoserver.features import Feature, FeatureQuery, check_feature
from geoserver.jobs import Job
from geoserver.store import Store
from geoserver.store.guards import check_etag
from layers import attachment_tables, routing
from layers.grid_teams import candidates

LAYER = "events"
TIMELINE = "event_timeline"
OPEN = ("reported", "accepted", "dispatched", "in_progress", "handled", "verified")
MAX_NOTE = 4000
GEOMETRY = "@geometry"  # the key of a new point among an action's changes (relocate)


@dataclass(frozen=True)
class Transition:
    """One action: the states it applies in, the state it leads to (None: unchanged), who may do it."""

    name: str
    sources: tuple[str, ...]
    target: str | None
    by: str  # "dispatcher", "assignee" or "either"


TRANSITIONS = {t.name: t for t in (
    Transition("accept", ("reported",), "accepted", "dispatcher"),
    Transition("reject", ("reported", "accepted"), "rejected", "dispatcher"),
    Transition("merge", ("reported", "accepted"), "merged", "dispatcher"),
    Transition("dispatch", ("accepted", "dispatched"), "dispatched", "dispatcher"),
    Transition("start", ("dispatched",), "in_progress", "assignee"),
    Transition("handle", ("in_progress",), "handled", "assignee"),
    Transition("verify", ("handled",), "verified", "dispatcher"),
    Transition("rework", ("handled", "verified"), "in_progress", "dispatcher"),
    Transition("close", ("verified", "handled"), "closed", "dispatcher"),
    Transition("escalate", OPEN, None, "either"),
    Transition("supervise", OPEN, None, "dispatcher"),
    Transition("relocate", OPEN, None, "dispatcher"),
)}
ACTIONS = tuple(TRANSITIONS)


def allowed_now(status: str | None) -> list[str]:
    """The actions legal from `status` (whoever does them)."""
    return [t.name for t in TRANSITIONS.values() if status in t.sources]


def now() -> datetime:
    """The current time, cut to the millisecond as the stores keep it."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _note(body: dict[str, Any]) -> str | None:
    note = body.get("note")
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadInput(f"note must be text of at most {MAX_NOTE} characters", parameter="note")
    return note


def _text(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadInput(f"{name} is required for this action", parameter=name)
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise BadInput(f"{name} must be a non-empty name of at most 200 characters", parameter=name)
    return value.strip()


def event_type(store: Store, code: str | None) -> dict[str, Any] | None:
    """The event type row of `code`, or None."""
    if code is None:
        return None
    found = store.rows("event_types", {"code": code}, limit=1)
    return found[0] if found else None


def add_timeline(store: Store, event_id: int, actor: str | None, action: str, *, from_status: str | None = None,
                 to_status: str | None = None, note: str | None = None, data: dict | None = None,
                 at: datetime | None = None) -> dict[str, Any]:
    """Append one timeline row (call inside the transaction that makes the change)."""
    return store.add_row(TIMELINE, {"event_id": event_id, "at": at or now(), "actor": actor, "action": action,
                                    "from_status": from_status, "to_status": to_status, "note": note,
                                    "data": data})


def timeline(store: Store, catalog: Catalog, principal: Principal, event_id: int) -> list[dict[str, Any]]:
    """The timeline of an event the principal may read (NotFound otherwise), oldest first."""
    store.get(LAYER, event_id, scope_for(principal, catalog.get(LAYER), "read"))
    return store.rows(TIMELINE, {"event_id": event_id}, order_by=("at",))


def prepare_report(store: Store, event: Feature) -> Feature:
    """A report before it is stored: its type checked (unknown or retired: BadInput naming `type`), its point
    inside the county (Unprocessable otherwise) and flagged `near_border` within the border distance of another
    township or grid, its status `reported`, its deadline from its type -- so the insert is the report's one
    change on the live stream."""
    event = check_feature(store.catalog.get(LAYER), event)  # typed values (times as datetimes)
    props = dict(event.properties)
    kind = event_type(store, props.get("type"))
    if kind is None or kind.get("retired"):
        known = ", ".join(t["code"] for t in store.rows("event_types", {"retired": False}, order_by=("code",)))
        state = "a retired" if kind else "an unknown"
        raise BadInput(f"type: {props.get('type')!r} is {state} event type; types: {known or 'none yet'}",
                       parameter="type")
    if event.geometry is not None:
        props["near_border"] = routing.route(store, event.geometry).near_border
    props["status"] = props.get("status") or "reported"
    if kind.get("deadline_hours") is not None and props.get("deadline") is None:
        props["deadline"] = (props.get("reported_at") or now()) + timedelta(hours=float(kind["deadline_hours"]))
    return Feature(event.id, event.geometry, props)


def on_report(store: Store, principal: Principal, event: Feature) -> None:
    """The timeline rows of a stored report, in its transaction: the report, where its point routed it (with
    the grid's team as candidates), probable duplicates, and its deadline."""
    props = event.properties
    add_timeline(store, event.id, principal.username, "report", to_status=props.get("status"),
                 data={"type": props.get("type"), "source": props.get("source")})
    where = (routing.route(store, event.geometry, detail=True) if props.get("near_border") and event.geometry
             else routing.Route(props.get("township_code"), props.get("grid_code")))
    add_timeline(store, event.id, None, "route", to_status=props.get("status"), note=where.note(),
                 data={**where.data(), "candidates": candidates(store, props.get("grid_code"))})
    duplicates = probable_duplicates(store, event)
    if duplicates:
        add_timeline(store, event.id, None, "probable-duplicate",
                     note=f"{len(duplicates)} open {props.get('type')} event(s) within {DUPLICATE_METRES:.0f} m and "
                          f"{DUPLICATE_HOURS:.0f} h: merge it if it is the same",
                     data={"candidates": duplicates})
    deadline = props.get("deadline")
    if deadline is not None:
        add_timeline(store, event.id, None, "deadline", note=f"due {deadline.isoformat()}",
                     data={"deadline": deadline.isoformat()})


# A new report this close in space and time to an open event of the same type is flagged as a probable
# duplicate (the dispatcher decides and merges).
DUPLICATE_METRES = 200.0
DUPLICATE_HOURS = 48.0
MAX_CANDIDATES = 10


def probable_duplicates(store: Store, event: Feature) -> list[int]:
    """Ids of open events of the same type within DUPLICATE_METRES and DUPLICATE_HOURS of this one."""
    props = event.properties
    when = props.get("reported_at")
    if event.geometry is None or when is None:
        return []
    near = {"op": "s_dwithin", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [
        event.geometry.x, event.geometry.y]}, DUPLICATE_METRES, "meters"]}
    window = [{"op": op, "args": [{"property": "reported_at"}, {"timestamp": t.isoformat()}]}
              for op, t in ((">=", when - timedelta(hours=DUPLICATE_HOURS)), ("<=", when + timedelta(hours=DUPLICATE_HOURS)))]
    same = {"op": "=", "args": [{"property": "type"}, props.get("type")]}
    other = {"op": "<>", "args": [{"property": "id"}, event.id]}
    query = FeatureQuery(filter=_open_and(near, same, other, *window), limit=MAX_CANDIDATES, with_geometry=False,
                         sortby=(("reported_at", False),))
    return [f.id for f in store.query(LAYER, query, Scope.everything()).features]


def act(store: Store, catalog: Catalog, principal: Principal, event_id: int, action: str, body: dict[str, Any],
        *, if_match: str | None = None) -> Feature:
    """Do `action` on an event as `principal`, in one transaction; returns the event as it is now.

    Raises:
        NotFound: no such event, or not in the principal's read scope; an unknown action.
        Forbidden: the principal may not do this action on this event.
        Conflict: the action is not legal in the event's state (the message lists those that are).
        PreconditionFailed: If-Match is not the event's current ETag.
        BadInput: a bad body (naming the field); `attachments` that are not this event's unlinked uploads.
    """
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise NotFound(f"no action {action!r}; actions: {', '.join(ACTIONS)}", parameter="action")
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    layer = catalog.get(LAYER)
    note = _note(body)
    with store.transaction(actor=principal.username):
        current = store.get(LAYER, event_id, scope_for(principal, layer, "read"))
        check_etag(current, if_match)
        status = current.properties.get("status")
        _check_who(principal, layer, transition, current)
        if status not in transition.sources:
            legal = allowed_now(status)
            raise Conflict(f"cannot {action} an event that is {status}; allowed now: "
                           f"{', '.join(legal) or 'nothing (it is finished)'}", parameter="action")
        changes, data = _apply(store, principal, transition, current, body)
        if body.get("attachments") is not None:  # photos uploaded to the event, now part of this step
            data["attachments"] = attachment_tables.link(store, event_id, body["attachments"], action)
        target = transition.target or status
        changes.setdefault("status", target)
        geometry = changes.pop(GEOMETRY, None)
        try:  # written only if still the version read: of two dispatchers acting at once, one wins
            updated = _write(store, current, changes, if_match=current.etag(), geometry=geometry)
        except PreconditionFailed:
            raise Conflict(f"event {event_id} changed while you acted on it; reload it and retry",
                           parameter="action") from None
        add_timeline(store, event_id, principal.username, action, from_status=status, to_status=target,
                     note=note, data=data or None)
        return updated


def _check_who(principal: Principal, layer, transition: Transition, event: Feature) -> None:
    township = event.properties.get("township_code")
    dispatcher = scope_for(principal, layer, "dispatch").allows(township)
    assignee = principal.username == event.properties.get("assignee") and not principal.is_anonymous
    ok = {"dispatcher": dispatcher, "assignee": assignee, "either": dispatcher or assignee}[transition.by]
    if not ok:
        who = {"dispatcher": "a dispatcher of this township", "assignee": "the assignee",
               "either": "a dispatcher of this township or the assignee"}[transition.by]
        raise Forbidden(f"only {who} may {transition.name} this event", parameter="action")


def _apply(store: Store, principal: Principal, transition: Transition, event: Feature,
           body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The property changes and timeline details of an action."""
    name = transition.name
    changes: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if name == "dispatch":
        assignee = _text(body, "assignee", required=True)
        department = _text(body, "department")
        changes.update(assignee=assignee, department=department)
        data.update(assignee=assignee, department=department)
    elif name == "close":
        kind = event_type(store, event.properties.get("type"))
        if event.properties.get("status") == "handled" and kind and kind.get("verify_required"):
            raise Conflict("this event type must be verified before it is closed; allowed now: verify, rework",
                           parameter="action")
        changes["closed_at"] = now()
    elif name in ("reject",):
        changes["closed_at"] = now()
    elif name == "escalate":
        level = int(event.properties.get("escalation_level") or 0) + 1
        changes["escalation_level"] = level
        data["level"] = level
    elif name == "relocate":
        point, moved, data = routing.relocate(store, principal, store.catalog.get(LAYER), event, body)
        changes.update(moved)
        changes[GEOMETRY] = point
    elif name == "merge":
        into = body.get("into")
        if not isinstance(into, int) or isinstance(into, bool) or into == event.id or not 0 < into < 2**63:
            raise BadInput("into must be the id of another event", parameter="into")
        _merge_into(store, principal, event, into)
        changes.update(merged_into=into, closed_at=now())
        data["into"] = into
    return changes, data


def _merge_into(store: Store, principal: Principal, duplicate: Feature, into: int) -> None:
    """Link the original to its duplicate: a timeline row on the original naming the duplicate's reporter."""
    layer = store.catalog.get(LAYER)
    try:
        original = store.get(LAYER, into, scope_for(principal, layer, "read"))
    except NotFound:
        raise BadInput(f"into: no event {into} you may see", parameter="into") from None
    if original.properties.get("status") not in OPEN:
        raise Conflict(f"event {into} is {original.properties.get('status')}: merge into an open event",
                       parameter="into")
    add_timeline(store, into, principal.username, "merged-in", note=f"duplicate event {duplicate.id} merged in",
                 data={"duplicate": duplicate.id, "reporter": duplicate.properties.get("reporter")})


def _write(store: Store, event: Feature, changes: dict[str, Any], if_match: str | None = None,
           geometry=None) -> Feature:
    """Write workflow-owned properties (and a new point) of an event (inside the caller's transaction; the
    store logs it and, for a new point, keys its township and grid again)."""
    return store.update(LAYER, event.id, Feature(event.id, geometry, changes), Scope.everything(), partial=True,
                        if_match=if_match)


# -- deadlines and escalation (a background job; `at` lets tests move time forward) -----------------------
JOB_ACTOR = "job:event-deadlines"
DEADLINE_BATCH = 200


def _open_and(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"op": "and", "args": [{"op": "in", "args": [{"property": "status"}, list(OPEN)]}, *conditions]}


def _deadline_before(at: datetime) -> dict[str, Any]:
    return {"op": "<", "args": [{"property": "deadline"}, {"timestamp": at.isoformat()}]}


def check_deadlines(store: Store, at: datetime | None = None) -> str | None:
    """Mark open events soon due (inside their type's warning window) or overdue (past the deadline).

    Overdue raises an `overdue_event` alarm at the event and, where the type says `auto_escalate`, escalates
    it one level; every step is a timeline row and a change on the live stream. Each event is written in its
    own transaction, only if it is still the version read (an action landing meanwhile wins; the next run
    looks again). Returns a summary, or None when there was nothing to do.
    """
    at = at or now()
    types = {t["code"]: t for t in store.rows("event_types")}
    overdue = soon = 0
    not_overdue = {"op": "or", "args": [{"op": "isnull", "args": [{"property": "due_state"}]},
                                        {"op": "<>", "args": [{"property": "due_state"}, "overdue"]}]}
    query = FeatureQuery(filter=_open_and(_deadline_before(at), not_overdue), limit=DEADLINE_BATCH,
                         sortby=(("deadline", True),))
    for event in store.query(LAYER, query, Scope.everything()).features:
        overdue += _mark(store, event, "overdue", at, types.get(event.properties.get("type")))
    for code, kind in types.items():
        if not kind.get("warn_hours"):
            continue
        window = at + timedelta(hours=float(kind["warn_hours"]))
        query = FeatureQuery(filter=_open_and(
            {"op": "=", "args": [{"property": "type"}, code]}, _deadline_before(window),
            {"op": "isnull", "args": [{"property": "due_state"}]}), limit=DEADLINE_BATCH)
        for event in store.query(LAYER, query, Scope.everything()).features:
            soon += _mark(store, event, "soon_due", at, kind)
    if not (overdue or soon):
        return None
    return f"{overdue} events overdue, {soon} soon due"


def _mark(store: Store, event: Feature, state: str, at: datetime, kind: dict[str, Any] | None) -> int:
    try:
        with store.transaction(actor=JOB_ACTOR):
            changes: dict[str, Any] = {"due_state": state}
            escalate = state == "overdue" and bool(kind and kind.get("auto_escalate"))
            if escalate:
                changes["escalation_level"] = int(event.properties.get("escalation_level") or 0) + 1
            _write(store, event, changes, if_match=event.etag())
            status = event.properties.get("status")
            deadline = event.properties.get("deadline")
            add_timeline(store, event.id, None, state.replace("_", "-"), from_status=status, to_status=status,
                         note=f"deadline {deadline.isoformat() if deadline else '?'}", at=at)
            if state == "overdue":
                _raise_overdue_alarm(store, event, at)
            if escalate:
                add_timeline(store, event.id, None, "escalate", from_status=status, to_status=status,
                             note="escalated automatically: overdue", at=at,
                             data={"level": changes["escalation_level"], "automatic": True})
        return 1
    except (PreconditionFailed, NotFound):
        return 0  # changed or gone meanwhile: the next run decides again


def _raise_overdue_alarm(store: Store, event: Feature, at: datetime) -> None:
    props = event.properties
    store.insert("alarms", [Feature(None, event.geometry, {
        "alarm_kind": "overdue_event", "level": "warning", "status": "raised", "raised_at": at,
        "event_id": event.id, "message": f"事件{props.get('event_code') or event.id}（{props.get('title')}）已超过办理时限"})],
        Scope.everything())


def deadline_job(every: float = 60.0) -> Job:
    """The background job that keeps deadlines (runs in one process at a time)."""
    return Job("event-deadlines", every=every, run=lambda store: check_deadlines(store))
