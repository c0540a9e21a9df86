"""Grid workers' patrols (巡查) and their GPS fixes: one or two outings a day around their own grid.

The schedule (who patrols when, how many fixes) is drawn first and is cheap; each patrol's track is then
made from the patrol's own random stream, so patrols and their points stream in any chunking and the ids
of both layers are known up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import shapely

from geoserver.features import Feature
from sample_data.county import County, Grid
from sample_data.scales import DAY_S, LOCAL_OFFSET_S, NOW_S, Scale, rng_for
from sample_data.spatial import GEOD, county_outline, geometry_to_local, random_points_in, to_local, to_lonlat

MODES = ("walking", "riding", "driving")
SPEED = {"walking": (1.0, 1.5), "riding": (4.0, 8.0), "driving": (8.0, 14.0)}  # m/s, per leg
REACH = {"walking": 1200.0, "riding": 4000.0, "driving": 8000.0}  # how far from home waypoints lie
SILENT_AFTER_S = 36 * 3600  # a worker without a fix for this long (a whole working day missed) has gone silent


@dataclass
class Schedule:
    """Every patrol of the window, in id order: worker grid, first fix, fixes, mode and whether it is over."""

    grid_index: np.ndarray
    start: np.ndarray  # first fix, UTC seconds
    end: np.ndarray  # last fix
    points: np.ndarray
    planned: np.ndarray  # fixes the patrol would have uncut (an active one is cut at now)
    mode: np.ndarray
    active: np.ndarray
    key: np.ndarray  # the patrol's random-stream key
    first_point_id: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def patrol_workers(county: County, scale: Scale, seed: int) -> list[Grid]:
    """The grids whose workers patrol in the sample (one worker per grid), in code order."""
    rng = rng_for(seed, "patrols", "workers")
    n = min(scale.patrol_workers, len(county.grids))
    weight = np.array([1.5 if g.township_code.endswith("100") else 1.0 for g in county.grids])
    chosen = rng.choice(len(county.grids), n, replace=False, p=weight / weight.sum())
    return [county.grids[i] for i in sorted(chosen, key=lambda i: county.grids[i].code)]


def _gaps(seed: int, key: int, planned: int) -> tuple[np.random.Generator, np.ndarray]:
    """The patrol's random stream and the seconds between its fixes (10–30 s, around its own rhythm)."""
    rng = rng_for(seed, "patrol", key)
    mean = rng.uniform(14, 26)
    gaps = rng.integers(int(max(10, mean - 6)), int(min(30, mean + 6)) + 1, planned - 1)
    return rng, gaps


def make_schedule(workers: list[Grid], scale: Scale, seed: int) -> Schedule:
    """Who patrols when over the last `patrol_days` local days (today only until now)."""
    rng = rng_for(seed, "patrols", "schedule")
    today = (NOW_S + LOCAL_OFFSET_S) // DAY_S * DAY_S - LOCAL_OFFSET_S
    rows = []
    for w, grid in enumerate(workers):
        town = grid.township_code.endswith("100")
        mode_p = (0.8, 0.17, 0.03) if town else (0.3, 0.62, 0.08)
        for d in range(scale.patrol_days):
            day = today - (scale.patrol_days - 1 - d) * DAY_S
            r = rng.random()
            n = 0 if r < 0.03 else (1 if r < 0.48 else 2)
            slots = [(8.5, 11.0), (14.0, 16.5)] if n == 2 else [[(8.5, 11.0), (14.0, 16.5)][int(rng.integers(2))]]
            for lo, hi in slots[:n]:
                start = day + int(rng.uniform(lo, hi) * 3600)
                duration = int(rng.uniform(30, 120) * 60)
                mode = int(rng.choice(3, p=mode_p))
                rows.append((start, w, duration, mode))
    rows.sort()
    grid_index, start, end, points, planned, mode, active, key = [], [], [], [], [], [], [], []
    for k, (s, w, duration, m) in enumerate(rows):
        if s >= NOW_S:
            continue
        _, gaps = _gaps(seed, k, max(2, duration // 20))
        times = s + np.concatenate([[0], np.cumsum(gaps)])
        live = times[-1] > NOW_S
        times = times[times <= NOW_S]
        if len(times) < 2:
            continue
        grid_index.append(w)
        start.append(s)
        end.append(int(times[-1]))
        points.append(len(times))
        planned.append(len(gaps) + 1)
        mode.append(m)
        active.append(live)
        key.append(k)
    pts = np.array(points, dtype=np.int64)
    return Schedule(np.array(grid_index), np.array(start), np.array(end), pts, np.array(planned), np.array(mode),
                    np.array(active), np.array(key), np.concatenate([[0], np.cumsum(pts)[:-1]]) + 1)


@dataclass
class Track:
    """One patrol's fixes."""

    t: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    speed: np.ndarray
    accuracy: np.ndarray


class PatrolMaker:
    """Makes the tracks of a schedule inside the workers' grids."""

    def __init__(self, county: County, workers: list[Grid], schedule: Schedule, seed: int) -> None:
        self.county, self.workers, self.schedule, self.seed = county, workers, schedule, seed
        self._local: dict[int, shapely.Geometry] = {}

    def _grid_local(self, w: int) -> shapely.Geometry:
        if w not in self._local:
            self._local[w] = geometry_to_local(self.workers[w].geometry)
            shapely.prepare(self._local[w])
        return self._local[w]

    def _waypoints(self, w: int, home: np.ndarray, mode: str, rng: np.random.Generator) -> list[np.ndarray]:
        """Places to visit around home, in order of bearing (a round, not a zigzag), every leg in the grid."""
        grid = self._grid_local(w)
        c = home + rng.normal(0, REACH[mode] / 2, (240, 2))
        c = c[shapely.contains_xy(grid, c[:, 0], c[:, 1])][:24]
        if len(c) < 3:
            c = np.column_stack(random_points_in(grid, 8, rng))
        back = shapely.covered_by(shapely.linestrings(np.stack([c, np.broadcast_to(home, c.shape)], axis=1)), grid)
        c = c[back][: int(rng.integers(4, 9))]
        bearing = np.arctan2(c[:, 1] - home[1], c[:, 0] - home[0])
        order = np.argsort((bearing - rng.uniform(-np.pi, np.pi)) % (2 * np.pi))
        rounds, last = [], home
        for p in c[order]:
            if shapely.covered_by(shapely.LineString([last, p]), grid):
                rounds.append(p)
                last = p
        return rounds or [home + 1.0]

    def track(self, i: int) -> Track:
        """The fixes of the schedule's `i`-th patrol."""
        s = self.schedule
        w, mode = int(s.grid_index[i]), MODES[int(s.mode[i])]
        rng, gaps = _gaps(self.seed, int(s.key[i]), int(s.planned[i]))
        t_rel = np.concatenate([[0], np.cumsum(gaps)])[: int(s.points[i])]
        grid = self.workers[w]
        hx, hy = to_local(np.array([grid.home[0]]), np.array([grid.home[1]]))
        home = np.array([hx[0], hy[0]])
        waypoints = self._waypoints(w, home, mode, rng)
        # A round through the waypoints (in order of bearing from home), again and again until time is up.
        path = [home]
        times, dists = [0.0], [0.0]
        lo, hi = SPEED[mode]
        while times[-1] < t_rel[-1]:
            for nxt in [*waypoints, home]:
                leg = float(np.hypot(*(nxt - path[-1])))
                if leg < 1.0:
                    continue
                path.append(nxt)
                times.append(times[-1] + leg / rng.uniform(lo, hi))
                dists.append(dists[-1] + leg)
                if rng.random() < 0.4:  # a stop: a talk, a check, a photo
                    times.append(times[-1] + rng.uniform(60, 300))
                    dists.append(dists[-1])
            waypoints = self._waypoints(w, home, mode, rng)
        times_a, dists_a = np.array(times), np.array(dists)
        d = np.interp(t_rel, times_a, dists_a)
        vertices = np.array(path)
        along = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(vertices, axis=0).T))])
        x, y = np.interp(d, along, vertices[:, 0]), np.interp(d, along, vertices[:, 1])
        seg = np.clip(np.searchsorted(times_a, t_rel, side="right") - 1, 0, len(times_a) - 2)
        dt = np.diff(times_a)[seg]
        true_speed = np.where(dt > 0, np.diff(dists_a)[seg] / np.where(dt > 0, dt, 1), 0.0)
        n = len(t_rel)
        town = grid.township_code.endswith("100")
        acc = (7.0 if town else 4.0) * rng.uniform(0.7, 1.5, n)
        kernel = np.ones(4) / 2.0
        ex = np.convolve(rng.normal(0, 1, n + 3), kernel, mode="valid") * acc / 2
        ey = np.convolve(rng.normal(0, 1, n + 3), kernel, mode="valid") * acc / 2
        outlier = rng.random(n) < 0.01
        k = int(outlier.sum())
        if k:
            r, th = rng.uniform(20, 50, k), rng.uniform(0, 2 * np.pi, k)
            ex[outlier] += r * np.cos(th)
            ey[outlier] += r * np.sin(th)
            acc[outlier] = rng.uniform(25, 60, k)
        speed = np.maximum(0.0, true_speed + rng.normal(0, 0.25, n))
        lon, lat = to_lonlat(x + ex, y + ey)
        # Near the county border a noisy fix could fall outside it: keep the true position there.
        out = ~shapely.contains_xy(county_outline(), lon, lat)
        if out.any():
            lon[out], lat[out] = to_lonlat(x[out], y[out])
        return Track(s.start[i] + t_rel.astype(np.int64), np.round(lon, 7), np.round(lat, 7), np.round(speed, 2),
                     np.round(acc, 1))


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def iter_patrol_chunks(county: County, maker: PatrolMaker, per_chunk: int = 50_000
                       ) -> Iterator[tuple[list[Feature], list[Feature]]]:
    """Patrols and their track points together, in id order, a few tens of thousands of points at a time."""
    s = maker.schedule
    patrols: list[Feature] = []
    points: list[Feature] = []
    for i in range(len(s)):
        tr = maker.track(i)
        grid = maker.workers[int(s.grid_index[i])]
        worker = f"worker-{grid.code}"
        pid = i + 1
        patrols.append(Feature(pid, shapely.linestrings(tr.lon, tr.lat), {
            "worker": worker, "started_at": _dt(tr.t[0]), "ended_at": None if s.active[i] else _dt(tr.t[-1]),
            "status": "active" if s.active[i] else "finished", "mode": MODES[int(s.mode[i])],
            "distance_m": round(float(GEOD.line_length(tr.lon, tr.lat)), 1), "duration_s": int(tr.t[-1] - tr.t[0]),
            "point_count": len(tr.t), "task_id": None, "last_fix_at": _dt(tr.t[-1]),
            "close_reason": None if s.active[i] else "stopped",
            "township_code": grid.township_code, "grid_code": grid.code}))
        towns, grids = county.locate(tr.lon, tr.lat)
        geoms = shapely.points(tr.lon, tr.lat)
        first = int(s.first_point_id[i])
        for k in range(len(tr.t)):
            points.append(Feature(first + k, geoms[k], {
                "patrol_id": pid, "worker": worker, "recorded_at": _dt(tr.t[k]), "speed": float(tr.speed[k]),
                "accuracy": float(tr.accuracy[k]), "heading": None, "altitude": None, "battery": None,
                "point_key": None, "township_code": towns[k], "grid_code": grids[k]}))
        if len(points) >= per_chunk:
            yield patrols, points
            patrols, points = [], []
    if patrols:
        yield patrols, points


def silent_spells(workers: list[Grid], schedule: Schedule) -> list[tuple[Grid, int, int | None]]:
    """(worker grid, raised at, resolved at) for every spell of a worker without a fix for SILENT_AFTER_S."""
    out = []
    window_start = int(schedule.start.min()) if len(schedule) else NOW_S
    for w, grid in enumerate(workers):
        mine = np.flatnonzero(schedule.grid_index == w)
        starts, ends = schedule.start[mine], schedule.end[mine]
        order = np.argsort(starts)
        starts, ends = starts[order], ends[order]
        last_end = window_start
        for st, en in zip(starts.tolist() + [None], ends.tolist() + [None], strict=True):
            if last_end + SILENT_AFTER_S < (st if st is not None else NOW_S):
                out.append((grid, last_end + SILENT_AFTER_S, st))
            if en is not None:
                last_end = max(last_end, en)
    return out
