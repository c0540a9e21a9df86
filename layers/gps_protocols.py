"""Fixes from existing tracker apps: the OsmAnd / Traccar Client protocol (query string, or Traccar Client's
JSON) and OwnTracks' HTTP JSON, turned into the same fixes as `POST /patrols/{id}/points` takes.

A fix goes to the open patrol of the device's owner; with none open it starts one in the grid the fix falls in
(`autostart="patrol"`) or is kept as the owner's position only (`"position"`). These apps send no fix id, so a
fix's key is its time: the same fix sent again (or also uploaded as a JSON batch without ids) is stored once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from geoserver.access import Principal, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict
from geoserver.features import FeatureQuery
from geoserver.store import Store
from layers import devices, patrol_work, positions
from layers.patrol_work import Fix

AUTOSTART = ("patrol", "position")
KNOT = 1852 / 3600  # m/s
_FIELD_OF_REASON = (("bad time", "time"), ("time in the future", "time"), ("bad coordinates", "lat"),
                    ("a 0,0 fix", "lat"))


def _number(value: Any, name: str) -> float | None:
    """A finite number from a query-string text or a JSON number (None when absent or empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadInput(f"{name} must be a number", parameter=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number; got {str(value)[:40]!r}", parameter=name) from None
    if not math.isfinite(number):
        raise BadInput(f"{name} must be a finite number", parameter=name)
    return number


def _epoch(value: Any, name: str) -> str:
    """A fix time (unix seconds, or milliseconds when that large, or ISO 8601) as ISO 8601 text."""
    if isinstance(value, str) and value.strip() and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return value.strip().replace(" ", "T", 1)  # ISO 8601, or Traccar's "yyyy-MM-dd HH:mm:ss"
    seconds = _number(value, name)
    if seconds is None:
        raise BadInput(f"{name} is required", parameter=name)
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    if not 0 < seconds < 253402300800:
        raise BadInput(f"{name} must be a unix time in seconds or an ISO 8601 time", parameter=name)
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _fix(raw: dict[str, Any], fields: dict[str, str]) -> Fix:
    """The fix of a protocol message, or BadInput naming the protocol's field at fault."""
    fix = patrol_work.parse_fix(0, raw, patrol_work.now())
    if isinstance(fix, str):
        field = next((f for prefix, f in _FIELD_OF_REASON if fix.startswith(prefix)), None)
        field = field or next((f for f in raw if fix.startswith(f"bad {f}")), "body")
        raise BadInput(fix, parameter=fields.get(field, field))
    return fix


def osmand(params: Mapping[str, Any]) -> tuple[str | None, Fix]:
    """(device id, fix) of an OsmAnd / Traccar Client message: query-string fields `id`, `lat`, `lon`,
    `timestamp`, `speed` (knots), `bearing`, `altitude`, `accuracy`, `batt`."""
    lat, lon = _number(params.get("lat"), "lat"), _number(params.get("lon"), "lon")
    if lat is None or lon is None:
        raise BadInput("lat and lon are required", parameter="lat" if lat is None else "lon")
    stamp = params.get("timestamp")
    time = _epoch(stamp, "timestamp") if stamp not in (None, "") else patrol_work.now().isoformat()
    speed = _number(params.get("speed"), "speed")
    raw = {"time": time, "lon": lon, "lat": lat, "speed": None if speed is None else speed * KNOT,
           "heading": _number(params.get("bearing"), "bearing"), "altitude": _number(params.get("altitude"), "altitude"),
           "accuracy": _number(params.get("accuracy"), "accuracy"), "battery": _number(params.get("batt"), "batt")}
    device = params.get("id") or params.get("deviceid")
    return (str(device) if device not in (None, "") else None), _fix(raw, {
        "time": "timestamp", "heading": "bearing", "battery": "batt"})


def traccar_json(body: Any) -> tuple[str | None, Fix]:
    """(device id, fix) of Traccar Client's JSON form: `{"device_id", "location": {"timestamp", "coords":
    {"latitude", "longitude", "speed" (m/s), "heading", "altitude", "accuracy"}, "battery": {"level" (0-1)}}}`."""
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    location = body.get("location")
    if not isinstance(location, dict) or not isinstance(location.get("coords"), dict):
        raise BadInput("location.coords is required", parameter="location")
    coords = location["coords"]

    def known(name: str, value: Any) -> float | None:  # the app sends -1 for an unknown speed or heading
        number = _number(value, name)
        return None if number is None or number < 0 else number

    for axis in ("latitude", "longitude"):
        if _number(coords.get(axis), f"location.coords.{axis}") is None:
            raise BadInput(f"location.coords.{axis} is required", parameter=f"location.coords.{axis}")
    battery = location.get("battery") if isinstance(location.get("battery"), dict) else {}
    level = known("location.battery.level", battery.get("level"))
    raw = {"time": _epoch(location.get("timestamp"), "location.timestamp"),
           "lat": _number(coords.get("latitude"), "location.coords.latitude"),
           "lon": _number(coords.get("longitude"), "location.coords.longitude"),
           "speed": known("location.coords.speed", coords.get("speed")),
           "heading": known("location.coords.heading", coords.get("heading")),
           "altitude": _number(coords.get("altitude"), "location.coords.altitude"),
           "accuracy": known("location.coords.accuracy", coords.get("accuracy")),
           "battery": None if level is None else round(level * 100, 1)}
    device = body.get("device_id")
    return (str(device) if device not in (None, "") else None), _fix(raw, {
        "time": "location.timestamp", "lat": "location.coords.latitude", "lon": "location.coords.longitude"})


def owntracks(body: Any, device_header: str | None) -> tuple[str | None, Fix | None]:
    """(device id, fix) of an OwnTracks HTTP message (`_type: location`, `lat`, `lon`, `tst`, `acc`, `batt`,
    `tid`, `vel` km/h, `cog`, `alt`); other message types carry no fix (None)."""
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    if body.get("_type") != "location":
        return None, None
    lat, lon = _number(body.get("lat"), "lat"), _number(body.get("lon"), "lon")
    if lat is None or lon is None:
        raise BadInput("lat and lon are required", parameter="lat" if lat is None else "lon")
    vel = _number(body.get("vel"), "vel")
    raw = {"time": _epoch(body.get("tst"), "tst"), "lon": lon, "lat": lat,
           "speed": None if vel is None or vel < 0 else vel / 3.6, "heading": _number(body.get("cog"), "cog"),
           "altitude": _number(body.get("alt"), "alt"), "accuracy": _number(body.get("acc"), "acc"),
           "battery": _number(body.get("batt"), "batt")}
    topic = body.get("topic")
    device = device_header or (topic.rsplit("/", 1)[-1] if isinstance(topic, str) and "/" in topic else None) \
        or body.get("tid")
    return (str(device) if device not in (None, "") else None), _fix(raw, {
        "time": "tst", "heading": "cog", "altitude": "alt", "accuracy": "acc", "battery": "batt"})


def _grid_for(store: Store, catalog: Catalog, owner: Principal, fix: Fix) -> str | None:
    """The grid the fix falls in when the owner may work there, else his own first grid."""
    code = store.locate(fix.lon, fix.lat).grid_code
    scope = scope_for(owner, catalog.get("grids"), "read")
    if code is not None:
        found = store.query("grids", FeatureQuery(filter={"op": "=", "args": [{"property": "grid_code"}, code]},
                                                  limit=1, with_geometry=False), scope).features
        if found:
            return code
    return min(owner.grids) if owner.grids else None


def receive(store: Store, catalog: Catalog, owner: Principal, device: dict[str, Any], fix: Fix,
            autostart: str) -> dict[str, Any]:
    """Take one fix of a registered device of `owner`: into his open patrol, else (by `autostart`) a new
    patrol or his position only. Returns what happened (`patrol`, `status`, `reason`)."""
    with store.transaction(actor=owner.username):
        store.lock(patrol_work.worker_lock(owner.username))  # one "find the open patrol or start one" at a time
        store.update_rows(devices.DEVICES.id, {"id": device["id"]}, {"last_seen_at": patrol_work.now()})
        current = patrol_work.open_patrol(store, owner.username)
        pid = None if current is None else int(current.id)  # type: ignore[arg-type]
        if pid is None and autostart == "patrol":
            grid = _grid_for(store, catalog, owner, fix)
            if grid is not None:
                pid = int(patrol_work.start(store, catalog, owner, {
                    "grid_code": grid, "started_at": fix.time.isoformat()}).id)  # type: ignore[arg-type]
        if pid is None:
            positions.move(store, owner.username, fix.time, fix.lon, fix.lat,
                           {**fix.extra, "device": device["device_id"], "patrol_id": None})
            return {"patrol": None, "status": "position"}
        patrol = patrol_work.own_patrol(store, catalog, owner, pid, lock=True, with_line=False)
        if patrol.properties.get("status") != "active":
            raise Conflict(f"patrol {pid} ended meanwhile; send the fix again", parameter="patrolId")
        statuses, _ = patrol_work.ingest(store, patrol, [fix], patrol_work.now(), device["device_id"])
    status = statuses.get(fix.index)
    if isinstance(status, tuple):
        return {"patrol": pid, "status": "rejected", "reason": status[0]}
    return {"patrol": pid, "status": status}
