"""Patrol work (巡查): a grid worker starts a patrol, uploads his phone's fixes (offline-safe, idempotent, in any
order) and stops it; a background job closes patrols left open.

A fix's key is the phone's point id, else its fix time; the key is unique within a patrol (a unique index), so
a batch sent twice stores every fix once. After each batch the patrol's line, mileage (geodesic), duration
(first to last fix) and fix count are recomputed from all its stored fixes in time order, dropping isolated
spikes, so the statistics depend only on which fixes arrived, never on the order the batches came in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely

from geoserver.access import Principal, Scope, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, Unauthorized
from geoserver.features import Feature, FeatureQuery
from geoserver.jobs import Job
from geoserver.store import Store
from layers import patrol_track, positions
from layers.patrol_track import MAX_SPEED, stub
from layers.patrols import TRAVEL_MODES

PATROLS = "patrols"
POINTS = "track_points"
MAX_POINTS = 20_000  # fixes in one upload (a day at one fix every 5 s)
FUTURE_SLACK = timedelta(minutes=5)  # phone clocks run a little ahead
MAX_KEY = 100
CLOSE_BATCH = 200
STOPPED = "stopped"
_NUMBERS = ("accuracy", "speed", "heading", "altitude", "battery")


def now() -> datetime:
    """The current time, cut to the millisecond as the stores keep it."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def parse_time(value: Any, name: str) -> datetime:
    """An ISO 8601 instant (UTC when no offset is given), cut to the millisecond; ValueError otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(f"{name} must be an ISO 8601 time")
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time; got {value!r}") from None
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _body_time(body: dict[str, Any], name: str) -> datetime | None:
    if body.get(name) is None:
        return None
    try:
        t = parse_time(body[name], name)
    except ValueError as exc:
        raise BadInput(str(exc), parameter=name) from None
    if t > now() + FUTURE_SLACK:
        raise BadInput(f"{name} is in the future", parameter=name)
    return t


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    return body


# -- start, stop, ownership ---------------------------------------------------------------------------------
def start(store: Store, catalog: Catalog, principal: Principal, body: Any) -> Feature:
    """Start a patrol of the caller in a grid he may work in: `grid_code`, optional `task_id`, `mode` and
    `started_at` (when the phone started it offline). Returns the patrol (status active).

    A worker has at most one open patrol: while one is active, Conflict naming it (`open_patrol`: its id), in
    whichever grid, so a phone that lost the answer to its start learns the patrol it opened and goes on with
    it (or stops it first)."""
    body = _object(body)
    if principal.is_anonymous:
        raise Unauthorized("log in to start a patrol", parameter="Authorization")
    code = body.get("grid_code")
    if not isinstance(code, str) or not code.strip() or len(code) > 100:
        raise BadInput("grid_code must be the code of a grid", parameter="grid_code")
    task = body.get("task_id")
    if task is not None and (not isinstance(task, int) or isinstance(task, bool) or not 0 < task < 2**63):
        raise BadInput("task_id must be a positive integer", parameter="task_id")
    mode = body.get("mode")
    if mode is not None and mode not in TRAVEL_MODES:
        raise BadInput(f"mode must be one of {', '.join(TRAVEL_MODES)}", parameter="mode")
    started = _body_time(body, "started_at") or now()
    grids = catalog.get("grids")
    found = store.query("grids", FeatureQuery(filter={"op": "=", "args": [{"property": "grid_code"}, code]},
                                              limit=1), scope_for(principal, grids, "read")).features
    if not found:
        raise BadInput(f"grid_code: no grid {code!r} you may work in", parameter="grid_code")
    anchor = found[0].geometry.representative_point()
    props = {"worker": principal.username, "started_at": started, "status": "active", "mode": mode,
             "distance_m": 0.0, "duration_s": 0, "point_count": 0, "task_id": task, "last_fix_at": now()}
    with store.transaction(actor=principal.username):
        store.lock(worker_lock(principal.username))  # after a tracker's auto-start, never beside it
        current = open_patrol(store, principal.username)
        if current is not None:
            p = current.properties
            raise Conflict(f"{principal.username} has patrol {current.id} open (grid {p.get('grid_code')}, started "
                           f"{p['started_at'].isoformat()}): send its fixes to it, or stop it before starting "
                           "another", members={"open_patrol": current.id})
        return store.insert(PATROLS, [Feature(None, stub(anchor.x, anchor.y), props)],
                            scope_for(principal, catalog.get(PATROLS), "create"))[0]


def open_patrol(store: Store, worker: str) -> Feature | None:
    """The worker's active patrol (the newest, should there be more), without its line; None if none is."""
    page = store.query(PATROLS, FeatureQuery(filter={"op": "and", "args": [
        {"op": "=", "args": [{"property": "worker"}, worker]},
        {"op": "=", "args": [{"property": "status"}, "active"]}]},
        sortby=(("started_at", False),), limit=1, with_geometry=False), Scope.everything())
    return page.features[0] if page.features else None


def worker_lock(username: str) -> str:
    """The lock name serialising the starts of one worker's patrols."""
    return f"patrol-start:{username}"


def own_patrol(store: Store, catalog: Catalog, principal: Principal, patrol_id: int, *, lock: bool = False,
               with_line: bool = True) -> Feature:
    """The caller's patrol (locked until the open transaction ends with `lock`; without its line unless
    `with_line`): NotFound outside his read scope, Forbidden if it is another worker's (admins and operators
    may act on any); Unauthorized when nobody is logged in."""
    if principal.is_anonymous:
        raise Unauthorized("log in to work on a patrol", parameter="Authorization")
    # The township scope only (not the worker's own-tracks owner): another worker's patrol is a 403 naming it.
    townships = Scope(scope_for(principal, catalog.get(PATROLS), "read").townships)
    patrol = store.get(PATROLS, patrol_id, townships, for_update=lock, with_geometry=with_line)
    if patrol.properties.get("worker") != principal.username and principal.role not in ("admin", "operator"):
        raise Forbidden(f"patrol {patrol_id} is another worker's: only he (or an admin) may change it",
                        parameter="patrolId")
    return patrol


def stop(store: Store, catalog: Catalog, principal: Principal, patrol_id: int, body: Any) -> Feature:
    """Stop an active patrol (optionally at `ended_at`); 409 if it has already ended."""
    body = _object(body)
    with store.transaction(actor=principal.username):
        patrol = own_patrol(store, catalog, principal, patrol_id, lock=True)
        props = patrol.properties
        if props.get("status") != "active":
            raise Conflict(f"patrol {patrol_id} has already ended ({props.get('close_reason') or 'finished'})",
                           parameter="patrolId")
        ended = _body_time(body, "ended_at") or now()
        if ended < props["started_at"]:
            raise BadInput("ended_at is before the patrol started", parameter="ended_at")
        reason = STOPPED if principal.username == props.get("worker") else f"{STOPPED} by {principal.username}"
        return store.update(PATROLS, patrol_id, Feature(patrol_id, None, {
            "status": "finished", "ended_at": ended, "close_reason": reason}), Scope.everything(), partial=True,
            if_match=patrol.etag())


# -- upload ------------------------------------------------------------------------------------------------
@dataclass
class Fix:
    """One parsed fix of an upload."""

    index: int
    key: str
    client_id: str | None
    time: datetime
    lon: float
    lat: float
    extra: dict[str, float | None]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    try:
        number = float(value)
    except OverflowError:  # an integer past a float's range
        raise ValueError from None
    if not math.isfinite(number):
        raise ValueError
    return number


def parse_fix(index: int, raw: Any, at: datetime) -> Fix | str:
    """A fix, or the reason it is rejected."""
    return _plain_fix(index, raw, at) or _any_fix(index, raw, at)


def _plain_fix(index: int, raw: Any, at: datetime) -> Fix | None:
    """The fix as most phones send it (text id, ISO time with its offset, float or int numbers, all valid),
    parsed without the checks that name what is wrong; None for anything else (`_any_fix` decides)."""
    if type(raw) is not dict:
        return None
    cid, text, lon, lat = raw.get("id"), raw.get("time"), raw.get("lon"), raw.get("lat")
    if not ((cid is None or (type(cid) is str and 0 < len(cid) <= MAX_KEY)) and type(text) is str
            and len(text) <= 40 and _finite(lon) and _finite(lat)):
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None or not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon == 0 and lat == 0):
        return None
    t = t.astimezone(UTC)
    t = t.replace(microsecond=t.microsecond // 1000 * 1000)
    if t > at + FUTURE_SLACK:
        return None
    extra: dict[str, float | None] = {}
    for name in _NUMBERS:
        value = raw.get(name)
        if value is not None and not _finite(value):
            return None
        extra[name] = None if value is None else float(value)
    key = f"id:{cid}" if cid is not None else f"t:{t.isoformat()}"
    return Fix(index, key, cid, t, float(lon), float(lat), extra)


def _finite(value: Any) -> bool:
    return (type(value) is float and math.isfinite(value)) or (type(value) is int and -2**53 <= value <= 2**53)


def _any_fix(index: int, raw: Any, at: datetime) -> Fix | str:
    if not isinstance(raw, dict):
        return "not an object"
    cid = raw.get("id")
    if cid is not None and (isinstance(cid, bool) or not isinstance(cid, str | int) or len(str(cid)) > MAX_KEY
                            or str(cid) == ""):
        return f"bad id: a text or number of at most {MAX_KEY} characters"
    try:
        t = parse_time(raw.get("time"), "time")
    except ValueError as exc:
        return f"bad time: {exc}"
    if t > at + FUTURE_SLACK:
        return "time in the future"
    try:
        lon, lat = _number(raw.get("lon")), _number(raw.get("lat"))
    except ValueError:
        lon = lat = None
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return "bad coordinates: lon in [-180, 180] and lat in [-90, 90] are required"
    if lon == 0 and lat == 0:
        return "a 0,0 fix (no position)"
    extra: dict[str, float | None] = {}
    for name in _NUMBERS:
        try:
            extra[name] = _number(raw.get(name))
        except ValueError:
            return f"bad {name}: a number is required"
    key = f"id:{cid}" if cid is not None else f"t:{t.isoformat()}"
    return Fix(index, key, None if cid is None else str(cid), t, lon, lat, extra)


def spikes(track: list[tuple[datetime, float, float]]) -> set[int]:
    """Indexes of isolated impossible jumps among fixes (time, lon, lat) in time order."""
    if not track:
        return set()
    t = np.fromiter((p[0].timestamp() for p in track), float, len(track))
    lon = np.fromiter((p[1] for p in track), float, len(track))
    lat = np.fromiter((p[2] for p in track), float, len(track))
    return {int(i) for i in np.flatnonzero(patrol_track.spike_mask(t, lon, lat))}


def upload(store: Store, catalog: Catalog, principal: Principal, patrol_id: int, body: Any) -> dict[str, Any]:
    """Store a batch of fixes of the caller's patrol in one transaction; returns the per-point report and the
    patrol's statistics. 409 for a patrol its worker (or an admin) stopped; an auto-closed one still takes
    late fixes."""
    body = _object(body)
    points = body.get("points")
    if not isinstance(points, list):
        raise BadInput("points must be a list of fixes", parameter="points")
    if len(points) > MAX_POINTS:
        raise BadInput(f"points: at most {MAX_POINTS} fixes per upload; got {len(points)}", parameter="points")
    at = now()
    parsed = [parse_fix(i, raw, at) for i, raw in enumerate(points)]
    report: list[dict[str, Any]] = [{"index": i} for i in range(len(points))]
    for i, (raw, fix) in enumerate(zip(points, parsed, strict=True)):
        if isinstance(raw, dict) and raw.get("id") is not None and isinstance(raw.get("id"), str | int):
            report[i]["id"] = raw["id"]
        if isinstance(fix, str):
            report[i].update(status="rejected", reason=fix)
    with store.transaction(actor=principal.username):
        patrol = own_patrol(store, catalog, principal, patrol_id, lock=True, with_line=False)
        if (patrol.properties.get("close_reason") or "").startswith(STOPPED):
            raise Conflict(f"patrol {patrol_id} was stopped: start a new patrol for new fixes",
                           parameter="patrolId")
        statuses, patrol = ingest(store, patrol, [f for f in parsed if not isinstance(f, str)], at)
    for index, status in statuses.items():
        if isinstance(status, str):
            report[index]["status"] = status
        else:
            report[index].update(status="rejected", reason=status[0])
    counts = {s: sum(1 for r in report if r.get("status") == s) for s in ("accepted", "duplicate", "rejected")}
    return {"patrol": patrol_id, **counts, "points": report, "statistics": summary(patrol)}


JUMP = f"an impossible jump (faster than {MAX_SPEED:.0f} m/s from the fixes before and after)"


TAIL = 16  # stored fixes read back for a batch that only extends the track


def ingest(store: Store, patrol: Feature, fixes: list[Fix], at: datetime,
           device: str | None = None) -> tuple[dict[int, Any], Feature]:
    """Add parsed fixes to a patrol locked by the caller's open transaction: one set-based write of the new
    fixes, one summary change, the patrol's line and figures brought up to date, and the worker's live
    position moved to the newest fix (of `device`, when a tracker app sent it).

    A batch whose fixes all come after the newest stored one (a phone sending as it goes) extends the track
    from its last few stored fixes (`_extend`); any other batch (late, overlapping, a retry) recomputes the
    figures from every stored fix (`_recompute`). Both give exactly the figures of the stored fixes: mileage
    is summed in whole millimetres per leg, so the sum does not depend on the order it was added up in.

    Returns each fix's status by its index (`accepted`, `duplicate`, or `(reason,)` when rejected) and the
    updated patrol.
    """
    pid = int(patrol.id)  # type: ignore[arg-type]
    worker = patrol.properties["worker"]
    statuses: dict[int, Any] = {}
    plan = _extend(store, patrol, fixes, statuses) if fixes else None
    if plan is None:
        statuses.clear()
        plan = _recompute(store, pid, fixes, statuses)
    accepted, finish = plan
    written = store.append(POINTS, _points(pid, worker, accepted), Scope.everything(),
                           unique=("patrol_id", "point_key"), summary={"patrol_id": pid, "worker": worker},
                           grid=patrol.properties.get("grid_code"),
                           fresh=True) if accepted else []  # the plan found none of their keys stored
    for f, new in zip(accepted, written, strict=True):
        statuses[f.index] = "accepted" if new else "duplicate"
    props: dict[str, Any] = {"last_fix_at": at}
    line = None
    if accepted:
        if all(written):
            line, figures = finish()
        else:  # a key stored meanwhile (another writer of the layer): the figures of what is stored
            line, figures = _recompute(store, pid, [], {})[1]()
        props.update(figures)
        newest = max(accepted, key=lambda f: (f.time, f.lon, f.lat))
        positions.move(store, worker, newest.time, newest.lon, newest.lat,
                       {**newest.extra, "device": device, "patrol_id": pid})
    if line is None:  # nothing new: the line stays where it is
        return statuses, store.patch_line(PATROLS, pid, props) or patrol
    if isinstance(line, Extension):  # the line extended in the store, never read back
        done = store.patch_line(PATROLS, pid, props, last=line.last, coords=line.coords)
        if done is not None:
            return statuses, done
        line, figures = _recompute(store, pid, [], {})[1]()  # the stored line was not the stored fixes' track
        props.update(figures)
    return statuses, store.update(PATROLS, pid, Feature(pid, line, props), Scope.everything(), partial=True)


@dataclass
class Extension:
    """A patrol line's new end: its last vertex (the newest stored fix, `last[1]`, after `last[0]`) replaced
    by `coords`."""

    last: tuple[tuple[float, float], tuple[float, float]]
    coords: np.ndarray


Plan = tuple[list["Fix"], Any]  # the fixes to write, and what gives the line and figures once they are


def _new_fixes(fixes: list[Fix], stored: set[str], statuses: dict[int, Any]) -> list[Fix]:
    """The fixes whose key is neither stored nor repeated earlier in the batch (those are duplicates)."""
    seen = set(stored)
    fresh = []
    for fix in fixes:
        if fix.key in seen:
            statuses[fix.index] = "duplicate"
        else:
            seen.add(fix.key)
            fresh.append(fix)
    return fresh


def _arrays(fixes: list[Fix]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.fromiter((f.time.timestamp() for f in fixes), float, len(fixes)),
            np.fromiter((f.lon for f in fixes), float, len(fixes)),
            np.fromiter((f.lat for f in fixes), float, len(fixes)))


def _refuse_jumps(fresh: list[Fix], t: np.ndarray, lon: np.ndarray, lat: np.ndarray, owner: np.ndarray,
                  statuses: dict[int, Any]) -> tuple[list[Fix], np.ndarray]:
    """Fixes in time order (`owner`: -1 for a stored one, else its index in `fresh`): the fresh fixes that are
    not impossible jumps, and the mask of the fixes kept (jumps out)."""
    jumps = {int(k) for k in owner[patrol_track.spike_mask(t, lon, lat) & (owner >= 0)]}
    for k in jumps:
        statuses[fresh[k].index] = (JUMP,)
    keep = ~np.isin(owner, list(jumps)) if jumps else np.ones(len(t), dtype=bool)
    return [f for k, f in enumerate(fresh) if k not in jumps], keep


def _recompute(store: Store, pid: int, fixes: list[Fix], statuses: dict[int, Any]) -> Plan:
    """Every stored fix read back: the batch checked against all of them, and the figures of the whole
    track once the new fixes are written."""
    stored = store.columns(POINTS, FeatureQuery(filter={"op": "=", "args": [{"property": "patrol_id"}, pid]}),
                           Scope.everything(), ("recorded_at", "point_key"))
    keys = {k if k is not None else f"fid:{i}" for k, i in zip(stored.values["point_key"], stored.ids, strict=True)}
    fresh = _new_fixes(fixes, keys, statuses)
    ft, fx, fy = _arrays(fresh)
    t = np.concatenate([stored.values["recorded_at"], ft])
    lon, lat = np.concatenate([stored.lon, fx]), np.concatenate([stored.lat, fy])
    owner = np.concatenate([np.full(len(stored), -1), np.arange(len(fresh))])
    order = patrol_track.time_order(t, lon, lat)
    t, lon, lat, owner = t[order], lon[order], lat[order], owner[order]
    accepted, keep = _refuse_jumps(fresh, t, lon, lat, owner, statuses)
    return accepted, lambda: patrol_track.statistics(t[keep], lon[keep], lat[keep])


def _extend(store: Store, patrol: Feature, fixes: list[Fix], statuses: dict[int, Any]) -> Plan | None:
    """The plan of a batch that only extends the track (every fix later than the newest stored one), from the
    last TAIL stored fixes, the first one's time and the stored line; None when the batch does not, or the
    patrol's stored figures are not those of its fixes (then everything is recomputed).

    Only the newest stored fix can change (become a spike between its neighbours); every older one keeps its
    status. So the track up to `a`, the newest older fix kept, is unchanged: the new line is the stored one
    up to `a` followed by the kept fixes from `a` on, and the mileage the stored one less its leg from `a`
    to the newest stored fix, plus the legs of the kept fixes from `a` on.
    """
    pid = int(patrol.id)  # type: ignore[arg-type]
    props = patrol.properties
    mine = {"op": "=", "args": [{"property": "patrol_id"}, pid]}
    page = store.query(POINTS, FeatureQuery(filter=mine, sortby=(("recorded_at", False),), limit=TAIL,
                                            properties=("recorded_at",)), Scope.everything())
    count = page.number_matched
    if count != (props.get("point_count") or 0):
        return None
    if count and min(f.time for f in fixes) <= page.features[0].properties["recorded_at"]:
        return None  # a late or overlapping batch
    tt = np.fromiter((f.properties["recorded_at"].timestamp() for f in page.features), float, len(page.features))
    xy = (shapely.get_coordinates(np.array([f.geometry for f in page.features], dtype=object))
          if page.features else np.zeros((0, 2)))
    order = patrol_track.time_order(tt, xy[:, 0], xy[:, 1])
    tt, xy = tt[order], xy[order]
    whole = count <= TAIL
    if not whole:  # more fixes at the tail's first time may come before it in the track: start after them
        cut = int(np.searchsorted(tt, tt[0], side="right"))
        tt, xy = tt[cut:], xy[cut:]
        if len(tt) < 3:
            return None
    # Only a phone's ids can be stored already (every fix time is new): one probe of the unique index.
    stored = store.stored_keys(POINTS, "point_key", [f.key for f in fixes if f.client_id is not None],
                               ("patrol_id", pid))
    fresh = _new_fixes(fixes, stored, statuses)
    ft, fx, fy = _arrays(fresh)
    order = patrol_track.time_order(ft, fx, fy)  # every fresh fix comes after the tail
    t, lon, lat = np.concatenate([tt, ft[order]]), np.concatenate([xy[:, 0], fx[order]]), \
        np.concatenate([xy[:, 1], fy[order]])
    owner = np.concatenate([np.full(len(tt), -1), np.arange(len(fresh))[order]])
    accepted, keep = _refuse_jumps(fresh, t, lon, lat, owner, statuses)
    t, lon, lat = t[keep], lon[keep], lat[keep]
    if whole:
        return accepted, lambda: patrol_track.statistics(t, lon, lat)
    m = len(tt)
    spikes = patrol_track.spike_mask(t, lon, lat)
    older = np.flatnonzero(~spikes[1:m - 1]) + 1  # kept stored fixes before the newest, the first left out
    if not len(older):
        return None
    a = int(older[-1])

    def finish() -> tuple[Any, dict[str, Any]]:
        kept = ~spikes[a:]
        kt, kx, ky = t[a:][kept], lon[a:][kept], lat[a:][kept]
        gone = patrol_track.millimetres(patrol_track.legs(t[[a, m - 1]], lon[[a, m - 1]], lat[[a, m - 1]])[0])
        mm = round(float(props.get("distance_m") or 0) * 1000) - int(gone.sum()) + \
            int(patrol_track.millimetres(patrol_track.legs(kt, kx, ky)[0]).sum())
        # The stored line ends at `a` then the newest stored fix (checked by the store when it writes).
        last = ((float(lon[a]), float(lat[a])), (float(lon[m - 1]), float(lat[m - 1])))
        first = store.query(POINTS, FeatureQuery(filter=mine, sortby=(("recorded_at", True),), limit=1,
                                                 properties=("recorded_at",), with_geometry=False),
                            Scope.everything()).features[0].properties["recorded_at"].timestamp()
        return Extension(last, np.column_stack([kx, ky])[1:]), {
            "distance_m": mm / 1000, "duration_s": patrol_track.duration(first, float(kt[-1])),
            "point_count": count + len(accepted)}
    return accepted, finish


def _points(pid: int, worker: str, fixes: list[Fix]) -> list[Feature]:
    """The track-point features of accepted fixes."""
    geoms = shapely.points(np.fromiter((f.lon for f in fixes), float, len(fixes)),
                           np.fromiter((f.lat for f in fixes), float, len(fixes)))
    return [Feature(None, g, {"patrol_id": pid, "worker": worker, "recorded_at": f.time, "point_key": f.key,
                              **f.extra}) for g, f in zip(geoms, fixes, strict=True)]


def summary(patrol: Feature) -> dict[str, Any]:
    """A patrol's figures for answers."""
    p = patrol.properties
    return {k: p.get(k) for k in ("status", "started_at", "ended_at", "distance_m", "duration_s", "point_count",
                                  "close_reason")}


# -- closing patrols left open (a background job; `at` lets tests move time forward) -------------------------
JOB_ACTOR = "job:patrol-auto-close"


def close_silent(store: Store, silence: timedelta, at: datetime | None = None) -> str | None:
    """Close active patrols with no fix or activity for `silence`: ended at their last fix (or last
    activity), the record saying it was closed automatically. Returns a summary, or None."""
    at = at or now()
    cutoff = at - silence
    query = FeatureQuery(filter={"op": "and", "args": [
        {"op": "=", "args": [{"property": "status"}, "active"]},
        {"op": "<", "args": [{"property": "last_fix_at"}, {"timestamp": cutoff.isoformat()}]}]},
        limit=CLOSE_BATCH, with_geometry=False)
    closed = 0
    minutes = round(silence.total_seconds() / 60)
    for patrol in store.query(PATROLS, query, Scope.everything()).features:
        with store.transaction(actor=JOB_ACTOR):
            try:
                current = store.get(PATROLS, patrol.id, Scope.everything())
            except NotFound:
                continue
            if current.properties.get("status") != "active" or current.properties["last_fix_at"] >= cutoff:
                continue  # stopped, or a fix arrived, since the query
            last = _last_fix(store, patrol.id) or current.properties.get("last_fix_at")
            store.update(PATROLS, patrol.id, Feature(patrol.id, None, {
                "status": "finished", "ended_at": max(last, current.properties["started_at"]),
                "close_reason": f"auto-closed after {minutes} min without fixes"}),
                Scope.everything(), partial=True, if_match=current.etag())
            closed += 1
    return f"closed {closed} silent patrols" if closed else None


def _last_fix(store: Store, patrol_id: int) -> datetime | None:
    page = store.query(POINTS, FeatureQuery(filter={"op": "=", "args": [{"property": "patrol_id"}, patrol_id]},
                                            properties=("recorded_at",), sortby=(("recorded_at", False),),
                                            limit=1, with_geometry=False), Scope.everything())
    return page.features[0].properties["recorded_at"] if page.features else None


def auto_close_job(silence_minutes: float, every: float = 60.0) -> Job:
    """The background job closing patrols silent for `silence_minutes` (one process at a time)."""
    silence = timedelta(minutes=silence_minutes)
    return Job("patrol-auto-close", every=every, run=lambda store: close_silent(store, silence))
