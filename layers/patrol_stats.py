"""Patrol statistics (巡查统计) per worker, grid, township and local day: online now and online rate, patrolled
or not, mileage and duration met or not against the daily targets, stops and their dwell times, and the share
of the grid covered (H3 cells visited ÷ cells in the grid).

The unit is a worker-day: every grid worker the caller may see (the roster: worker accounts of the townships
in scope, a grid worker only himself) on every local day asked, whether he patrolled or not. Fixes are read
in one columnar query under the caller's scope (the township scope in the query; a grid worker only his own);
mileage is geodesic after dropping isolated impossible jumps (as the upload does), duration is first to last
fix of each patrol within the day. Days are the county's (UTC+8, as layers/stats.py counts events).

Per fix, only whole-array work: the read (numpy arrays, no row objects; one worker name per patrol, numbered
by pandas.factorize), one vectorised geodesic pass (pyproj), one vectorised H3 pass (h3ronpy); per worker-day,
the set of its distinct cells meets the grid's cells and its stops are looked for. A grid's cells (those whose
centre lies in it, as h3-py's geo_to_cells) are computed by h3ronpy once per grid geometry and kept.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import shapely
from h3ronpy.vector import ContainmentMode, coordinates_to_cells, geometry_to_cells

from geoserver.access import Principal, Scope, scope_for, track_owner
from geoserver.catalog import Catalog
from geoserver.errors import BadInput
from geoserver.features import MAX_LIMIT, FeatureQuery
from geoserver.store import Store
from layers.patrol_track import legs, spike_mask

GROUPS = ("worker", "grid_code", "township_code", "day")
MAX_DAYS = 31
LOCAL_HOURS = 8
H3_RESOLUTION = 10  # cells of about 15,000 m² (66 m edges): a street, a courtyard
STOP_RADIUS_M = 30.0
STOP_MINUTES = 5.0
TEAM_ROLES = ("full_time", "part_time")  # grid team members who patrol (layers/grid_teams.py)
_GRID_CELLS: OrderedDict[tuple[str, bytes], frozenset[int]] = OrderedDict()
_GRID_CELLS_KEPT = 5_000


@dataclass(frozen=True)
class Targets:
    """What a worker's day must reach (ONEMAP_PATROL_TARGET_KM / _MINUTES) and what counts as online now."""

    km: float = 5.0
    minutes: float = 120.0
    online_minutes: float = 10.0


@dataclass
class Member:
    """One worker of the roster: his grid and township (the first of his account's)."""

    username: str
    grid_code: str | None
    township_code: str | None


@dataclass
class WorkerDay:
    """One worker on one local day."""

    member: Member
    day: str
    patrols: set[int] = field(default_factory=set)
    fixes: int = 0
    distance_m: float = 0.0
    duration_s: float = 0.0
    stops: list[dict[str, Any]] = field(default_factory=list)
    cells: set[int] = field(default_factory=set)  # the H3 cells of his own grid he visited


def local_days(first: date, last: date) -> list[date]:
    """Every local day from first to last; BadInput beyond MAX_DAYS or backwards."""
    if last < first:
        raise BadInput("day: the range ends before it starts", parameter="day")
    n = (last - first).days + 1
    if n > MAX_DAYS:
        raise BadInput(f"day: at most {MAX_DAYS} days at once; got {n}", parameter="day")
    return [first + timedelta(days=i) for i in range(n)]


def roster(store: Store, catalog: Catalog, principal: Principal) -> list[Member]:
    """The grid workers the caller may see, by name."""
    scope = scope_for(principal, catalog.get("patrols"), "read")
    if scope.empty:
        return []
    owner = track_owner(principal)
    users = []
    if owner is not None:
        user = store.get_user(owner)
        users = [user] if user is not None else []
    else:
        for township in [None] if scope.unrestricted else sorted(scope.townships or ()):
            offset = 0
            while True:
                page, total = store.list_users(role="worker", township=township, limit=500, offset=offset)
                users.extend(page)
                offset += len(page)
                if not page or offset >= total:
                    break
    teams = {r["username"]: r["grid_code"] for r in store.rows("grid_bindings", {"role": list(TEAM_ROLES)},
                                                                order_by=("grid_code",))}
    out: dict[str, Member] = {}
    for user in users:
        towns = [t for t in user.townships if scope.allows(t)] or list(user.townships)
        grid = user.grids[0] if user.grids else teams.get(user.username)
        out[user.username] = Member(user.username, grid, towns[0] if towns else None)
    return [out[name] for name in sorted(out)]


def patrol_stats(store: Store, catalog: Catalog, principal: Principal, first: date, last: date,
                 group_by: tuple[str, ...], targets: Targets, at: datetime | None = None) -> dict[str, Any]:
    """The figures of every worker-day from `first` to `last` (local days), grouped by `group_by`."""
    for g in group_by:
        if g not in GROUPS:
            raise BadInput(f"group_by: {g!r} is not one of {', '.join(GROUPS)}", parameter="group_by")
    if len(set(group_by)) != len(group_by):
        raise BadInput("group_by names a group twice", parameter="group_by")
    days = local_days(first, last)
    at = at or datetime.now(UTC)
    members = {m.username: m for m in roster(store, catalog, principal)}
    start = datetime.combine(first, datetime.min.time(), UTC) - timedelta(hours=LOCAL_HOURS)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC) - timedelta(hours=LOCAL_HOURS)
    records = {(name, d.isoformat()): WorkerDay(m, d.isoformat()) for name, m in members.items() for d in days}
    cells = _grid_cells(store, catalog, principal, {m.grid_code for m in members.values() if m.grid_code})
    _add_fixes(store, catalog, principal, start, end, members, records, cells)
    online = _online_now(store, catalog, principal, at, targets.online_minutes)
    groups: dict[tuple, list[WorkerDay]] = defaultdict(list)
    for rec in records.values():
        groups[tuple(_key(rec, g) for g in group_by)].append(rec)
    rows = [{**dict(zip(group_by, key, strict=True)), **_figures(recs, targets, online, cells,
                                                                   detail=set(group_by) >= {"worker", "day"})}
            for key, recs in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0]))]
    return {"from": first.isoformat(), "to": last.isoformat(), "group_by": list(group_by),
            "targets": {"km": targets.km, "minutes": targets.minutes, "online_minutes": targets.online_minutes,
                        "stop_radius_m": STOP_RADIUS_M, "stop_minutes": STOP_MINUTES, "h3_resolution": H3_RESOLUTION},
            "as_of": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "totals": _figures(list(records.values()), targets, online, cells, detail=False), "groups": rows}


def _key(rec: WorkerDay, group: str) -> Any:
    return {"worker": rec.member.username, "grid_code": rec.member.grid_code,
            "township_code": rec.member.township_code, "day": rec.day}[group]


def _figures(recs: list[WorkerDay], targets: Targets, online: set[str], cells: dict[str, frozenset[int]],
             detail: bool) -> dict[str, Any]:
    """A group's figures, counted in worker-days (with `detail`, one worker-day's stops are listed)."""
    workers = {r.member.username for r in recs}
    patrolled = [r for r in recs if r.patrols]
    mileage = [r.distance_m >= targets.km * 1000 for r in recs]
    duration = [r.duration_s >= targets.minutes * 60 for r in recs]
    met = sum(a and b for a, b in zip(mileage, duration, strict=True))
    # Grids do not overlap, nor do their cells (a cell is a grid's when its centre is): sizes add up.
    grid_cells = sum(len(cells.get(g, ())) for g in {r.member.grid_code for r in recs if r.member.grid_code})
    visited = len(set().union(*(r.cells for r in recs))) if recs else 0
    n = len(recs)
    out: dict[str, Any] = {
        "workers": len(workers), "worker_days": n,
        "online_now": len(workers & online), "online_now_rate": _rate(len(workers & online), len(workers)),
        "online": len(patrolled), "online_rate": _rate(len(patrolled), n),
        "patrolled": len(patrolled), "not_patrolled": n - len(patrolled), "patrol_rate": _rate(len(patrolled), n),
        "patrols": len(set().union(*(r.patrols for r in recs))) if recs else 0,
        "distance_m": round(sum(r.distance_m for r in recs), 2), "duration_s": int(sum(r.duration_s for r in recs)),
        "mileage_met": sum(mileage), "duration_met": sum(duration), "met": met, "not_met": n - met,
        "met_rate": _rate(met, n), "stops": sum(len(r.stops) for r in recs),
        "dwell_s": int(sum(s["dwell_s"] for r in recs for s in r.stops)),
        "cells_visited": visited, "cells": grid_cells, "coverage": _rate(visited, grid_cells),
    }
    if detail and n == 1:  # one worker-day: its stops themselves (its counts read 0 or 1)
        out["stop_list"] = recs[0].stops
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- the fixes ---------------------------------------------------------------------------------------------
def _fixes_query(principal: Principal, start: datetime, end: datetime) -> FeatureQuery:
    owner = track_owner(principal)
    filt = None if owner is None else {"op": "=", "args": [{"property": "worker"}, owner]}
    # [start, end): the day's last millisecond is the closed interval's end
    # in id order: sorted here (a sort inside the read costs the database far more)
    return FeatureQuery(datetime=(start, end - timedelta(milliseconds=1)), filter=filt)


def _add_fixes(store: Store, catalog: Catalog, principal: Principal, start: datetime, end: datetime,
               members: dict[str, Member], records: dict[tuple[str, str], WorkerDay],
               grid_cells: dict[str, frozenset[int]]) -> None:
    """Read the fixes of the days in one query and add each worker-day's patrols, mileage, duration, stops
    and the cells of his own grid he visited."""
    scope = scope_for(principal, catalog.get("track_points"), "read")
    if scope.empty:
        return
    query = _fixes_query(principal, start, end)
    cols = store.columns("track_points", query, scope, ("patrol_id", "recorded_at"))
    if not len(cols):
        return
    t = np.asarray(cols.values["recorded_at"], dtype=float)
    patrol = np.asarray(cols.values["patrol_id"], dtype=np.int64)
    # A patrol's fixes are its worker's (the upload writes them so): one name per patrol, not one per fix.
    patrols, which = np.unique(patrol, return_inverse=True)
    owners = _patrol_workers(store, patrols.tolist())
    if len(owners) < len(patrols):  # fixes of a patrol no longer stored: their own worker names tell
        every = store.columns("track_points", query, scope, ("worker", "patrol_id"))
        owners.update(zip(np.asarray(every.values["patrol_id"]).tolist(), every.values["worker"], strict=True))
    per_patrol, names = pd.factorize(np.asarray([owners[p] for p in patrols.tolist()], dtype=object))
    worker = per_patrol[which]
    day = np.floor((t + LOCAL_HOURS * 3600) / 86400).astype(np.int64)
    order = np.lexsort((t, patrol, day, worker))
    t, lon, lat, worker, patrol, day = t[order], cols.lon[order], cols.lat[order], worker[order], patrol[order], day[order]
    # One run per worker, day and patrol; isolated impossible jumps inside a run are dropped.
    same = (worker[1:] == worker[:-1]) & (day[1:] == day[:-1]) & (patrol[1:] == patrol[:-1])
    dist, speed = legs(t, lon, lat)
    spikes = spike_mask(t, lon, lat, np.where(same, speed, 0.0))
    if spikes.any():
        keep = ~spikes
        t, lon, lat, worker, patrol, day = t[keep], lon[keep], lat[keep], worker[keep], patrol[keep], day[keep]
        same = (worker[1:] == worker[:-1]) & (day[1:] == day[:-1]) & (patrol[1:] == patrol[:-1])
        dist, _ = legs(t, lon, lat)
    starts = np.concatenate(([0], np.flatnonzero(~same) + 1))
    ends = np.concatenate((starts[1:], [len(t)]))
    cells = h3_cells(lat, lon)
    along = np.concatenate(([0.0], np.cumsum(np.where(same, dist, 0.0))))  # metres from the first fix read
    firsts, lasts = starts.tolist(), (ends - 1).tolist()
    for a, b, z in zip(firsts, ends.tolist(), lasts, strict=True):
        name = str(names[worker[a]])
        when = date(1970, 1, 1) + timedelta(days=int(day[a]))
        rec = records.get((name, when.isoformat()))
        if rec is None:  # fixes of someone outside the roster (a leader patrolling): counted on his own
            member = members.setdefault(name, Member(name, None, None))
            rec = records[(name, when.isoformat())] = WorkerDay(member, when.isoformat())
        rec.patrols.add(int(patrol[a]))
        rec.fixes += b - a
        rec.distance_m += float(along[z] - along[a])
        rec.duration_s += float(t[z] - t[a])
        own = grid_cells.get(rec.member.grid_code or "")
        if own:
            rec.cells |= own.intersection(np.unique(cells[a:b]).tolist())
        rec.stops.extend(stops(t[a:b], lon[a:b], lat[a:b]))


def _patrol_workers(store: Store, ids: list[int]) -> dict[int, str]:
    """The worker of each patrol (by id; the fixes were authorised by the caller's scope already)."""
    out: dict[int, str] = {}
    for i in range(0, len(ids), MAX_LIMIT):
        part = tuple(ids[i:i + MAX_LIMIT])
        page = store.query("patrols", FeatureQuery(ids=part, properties=("worker",), with_geometry=False,
                                                   limit=len(part)), Scope.everything())
        out.update((int(f.id), str(f.properties["worker"])) for f in page.features)  # type: ignore[arg-type]
    return out


def h3_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The H3 cell (H3_RESOLUTION) of each fix, as int64 cell numbers (h3-py's integer form), in one
    vectorised call (h3ronpy)."""
    if not len(lat):
        return np.empty(0, dtype=np.int64)
    return np.asarray(coordinates_to_cells(lat, lon, H3_RESOLUTION), dtype=np.uint64).astype(np.int64)


def stops(t: np.ndarray, lon: np.ndarray, lat: np.ndarray, radius_m: float = STOP_RADIUS_M,
          minutes: float = STOP_MINUTES) -> list[dict[str, Any]]:
    """Stops of one run of fixes in time order: the longest runs that stay within `radius_m` of their first
    fix for at least `minutes` (distances in a local flat approximation, exact enough at 30 m)."""
    n = len(t)
    if n < 2:
        return []
    y = lat * 110_574.0
    x = lon * 111_320.0 * np.cos(np.radians(float(lat.mean())))
    need = minutes * 60
    # A stop anchored at i holds the first fix `need` seconds later within the radius: only those anchors count.
    later = np.searchsorted(t, t + need)
    ok = later < n
    cand = np.flatnonzero(ok)
    cand = cand[np.hypot(x[later[cand]] - x[cand], y[later[cand]] - y[cand]) <= radius_m]
    out, free = [], 0
    for i in cand.tolist():
        if i < free:
            continue
        j = _leaves(x, y, i, radius_m)
        if t[j - 1] - t[i] >= need:
            out.append({"start": _iso(t[i]), "end": _iso(t[j - 1]), "dwell_s": int(t[j - 1] - t[i]),
                        "lon": round(float(lon[i:j].mean()), 7), "lat": round(float(lat[i:j].mean()), 7)})
            free = j
    return out


def _leaves(x: np.ndarray, y: np.ndarray, i: int, radius_m: float) -> int:
    """The first fix after i farther than radius_m from fix i (len(x) if none), looked for in growing windows
    (a stop ends within a few fixes; scanning the rest of the day for every anchor cost more than the stops)."""
    n, lo, width = len(x), i, 64
    while lo < n:
        hi = min(n, lo + width)
        far = np.flatnonzero(np.hypot(x[lo:hi] - x[i], y[lo:hi] - y[i]) > radius_m)
        if len(far):
            return lo + int(far[0])
        lo, width = hi, width * 4
    return n


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _online_now(store: Store, catalog: Catalog, principal: Principal, at: datetime, minutes: float) -> set[str]:
    """Workers with a fix within the last `minutes` (under the caller's scope)."""
    scope = scope_for(principal, catalog.get("track_points"), "read")
    if scope.empty:
        return set()
    query = _fixes_query(principal, at - timedelta(minutes=minutes), at + timedelta(minutes=5))
    return {str(w) for w in store.columns("track_points", query, scope, ("worker",)).values["worker"]}


def _grid_cells(store: Store, catalog: Catalog, principal: Principal, codes: set[str]) -> dict[str, frozenset[int]]:
    """The H3 cells of each grid (kept per grid and geometry: grids seldom change)."""
    if not codes:
        return {}
    query = FeatureQuery(filter={"op": "in", "args": [{"property": "grid_code"}, sorted(codes)]}, limit=10_000,
                         properties=("grid_code",))
    out = {}
    for grid in store.query("grids", query, scope_for(principal, catalog.get("grids"), "read")).features:
        code = grid.properties["grid_code"]
        key = (code, shapely.to_wkb(grid.geometry))
        cells = _GRID_CELLS.get(key)
        if cells is None:
            # the cells whose centre lies in the grid, as h3-py's geo_to_cells gives them, 3 times faster
            found = geometry_to_cells(grid.geometry, H3_RESOLUTION, containment_mode=ContainmentMode.ContainsCentroid)
            cells = frozenset(np.asarray(found, dtype=np.uint64).astype(np.int64).tolist())
            _GRID_CELLS[key] = cells
            while len(_GRID_CELLS) > _GRID_CELLS_KEPT:
                _GRID_CELLS.popitem(last=False)
        else:
            _GRID_CELLS.move_to_end(key)
        out[code] = cells
    return out
