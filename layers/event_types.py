"""Event types are data (事件类型): code, name, handling deadline, soon-due warning, verification, default
departments and escalation path. Admins manage them; a type in use is retired, never deleted."""

from __future__ import annotations

import re
from typing import Any

from geoserver.access import Principal, Scope
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound
from geoserver.features import FeatureQuery
from geoserver.store import Store

TABLE = "event_types"
LEVELS = ("grid", "township", "county", "department")
CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_HOURS = 24 * 366
FIELDS = ("code", "name", "deadline_hours", "warn_hours", "verify_required", "departments", "escalation",
          "auto_escalate", "retired")


def _admin(principal: Principal) -> None:
    if principal.role != "admin":
        raise Forbidden("only an admin manages event types", parameter="Authorization")


def _hours(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_HOURS:
        raise BadInput(f"{name} must be a number of hours above 0 and at most {MAX_HOURS}", parameter=name)
    return float(value)


def _names(body: dict[str, Any], name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or len(value) > 50:
        raise BadInput(f"{name} must be a list of at most 50 names", parameter=name)
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 100:
            raise BadInput(f"{name} must hold non-empty names of at most 100 characters", parameter=name)
        if allowed and item not in allowed:
            raise BadInput(f"{name}: {item!r} is not one of {', '.join(allowed)}", parameter=name)
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadInput(f"{name} must be true or false", parameter=name)
    return value


def checked(body: Any, code: str | None = None) -> dict[str, Any]:
    """A type row from a request body (BadInput naming the first bad field)."""
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r}; fields: {', '.join(FIELDS)}", parameter=unknown[0])
    code = code if code is not None else body.get("code")
    if not isinstance(code, str) or not CODE.match(code):
        raise BadInput("code must be 1-64 lower-case letters, digits or _ starting with a letter", parameter="code")
    if body.get("code", code) != code:
        raise BadInput("code in the body differs from the code in the path", parameter="code")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadInput("name must be non-empty text of at most 200 characters", parameter="name")
    row = {"code": code, "name": name.strip(), "deadline_hours": _hours(body, "deadline_hours"),
           "warn_hours": _hours(body, "warn_hours"), "verify_required": _flag(body, "verify_required"),
           "departments": _names(body, "departments"), "escalation": _names(body, "escalation", LEVELS),
           "auto_escalate": _flag(body, "auto_escalate"), "retired": _flag(body, "retired")}
    if row["warn_hours"] and row["deadline_hours"] and row["warn_hours"] >= row["deadline_hours"]:
        raise BadInput("warn_hours must be less than deadline_hours", parameter="warn_hours")
    return row


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A type as the API shows it."""
    return {k: row[k] for k in FIELDS}


def list_types(store: Store, include_retired: bool = True) -> list[dict[str, Any]]:
    """Every type, by code."""
    rows = store.rows(TABLE, order_by=("code",))
    return [public(r) for r in rows if include_retired or not r["retired"]]


def get_type(store: Store, code: str) -> dict[str, Any]:
    """One type; NotFound naming the code."""
    found = store.rows(TABLE, {"code": code}, limit=1)
    if not found:
        raise NotFound(f"no event type {code!r}", parameter="code")
    return public(found[0])


def create_type(store: Store, principal: Principal, body: Any) -> dict[str, Any]:
    """Add a type (admins); Conflict if the code exists."""
    _admin(principal)
    row = checked(body)
    with store.transaction(actor=principal.username):
        if store.rows(TABLE, {"code": row["code"]}, limit=1):
            raise Conflict(f"event type {row['code']!r} exists; PUT /event-types/{row['code']} changes it",
                           parameter="code")
        return public(store.add_row(TABLE, row))


def replace_type(store: Store, principal: Principal, code: str, body: Any) -> dict[str, Any]:
    """Replace a type's definition (admins); NotFound for an unknown code."""
    _admin(principal)
    row = checked(body, code)
    with store.transaction(actor=principal.username):
        if not store.update_rows(TABLE, {"code": code}, {k: v for k, v in row.items() if k != "code"}):
            raise NotFound(f"no event type {code!r}", parameter="code")
        return get_type(store, code)


def delete_type(store: Store, principal: Principal, code: str) -> None:
    """Delete a type nobody used (admins); one in use is a Conflict saying to retire it."""
    _admin(principal)
    with store.transaction(actor=principal.username):
        get_type(store, code)
        used = store.query("events", FeatureQuery(filter={"op": "=", "args": [{"property": "type"}, code]},
                                                  limit=0), Scope.everything()).number_matched
        if used:
            raise Conflict(f"event type {code!r} is used by {used} events; retire it instead "
                           f"(PUT with \"retired\": true)", parameter="code")
        store.delete_rows(TABLE, {"code": code})


# What a county starts with (`onemap db upgrade` adds them to an empty table); admins change them after.
DEFAULTS = (
    ("road_damage", "道路损坏", 72, 24, True, ["transport"], ["grid", "township", "county"]),
    ("garbage", "垃圾堆放", 24, 6, False, ["sanitation"], ["grid", "township"]),
    ("illegal_building", "违法建设", 168, 48, True, ["housing"], ["grid", "township", "county"]),
    ("dispute", "矛盾纠纷", 72, 24, True, [], ["grid", "township", "county"]),
    ("fire_hazard", "火灾隐患", 4, 1, True, ["fire"], ["grid", "township", "county", "department"]),
    ("water_pollution", "水体污染", 24, 6, True, ["ecology"], ["grid", "township", "county", "department"]),
    ("grassland_damage", "草原破坏", 72, 24, True, ["ecology"], ["grid", "township", "county"]),
    ("wildlife", "野生动物", 24, 6, False, ["ecology"], ["grid", "township"]),
    ("public_security", "治安隐患", 12, 3, True, ["police"], ["grid", "township", "county", "department"]),
    ("livestock", "牲畜管理", 48, 12, False, ["agriculture"], ["grid", "township"]),
    ("infrastructure", "基础设施", 72, 24, True, ["transport"], ["grid", "township", "county"]),
    ("other", "其他", 72, 24, False, [], ["grid", "township"]),
)


def seed_defaults(store: Store) -> int:
    """Add the default types to an empty table; returns how many were added."""
    with store.transaction(actor="onemap"):
        if store.count_rows(TABLE):
            return 0
        for code, name, hours, warn, verify, departments, escalation in DEFAULTS:
            store.add_row(TABLE, {"code": code, "name": name, "deadline_hours": float(hours),
                                  "warn_hours": float(warn), "verify_required": verify,
                                  "departments": departments, "escalation": escalation,
                                  "auto_escalate": verify, "retired": False})
    return len(DEFAULTS)
