"""A year of events (事件) up to the sample's now: where and when they are reported, and how far they got.

Events are made one local day at a time from that day's own random stream, so any day can be regenerated
alone (the alarms need the recent ones) and a large year streams in bounded memory. Ids follow report time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import shapely

from geoserver.features import Feature
from layers.event_types import DEFAULTS as TYPE_DEFAULTS
from layers.events import EVENT_STATUSES, EVENT_TYPES, PRIORITIES
from layers.sites import METRIC_ZH
from sample_data.county import County
from sample_data.scales import DAY_S, LOCAL_OFFSET_S, NOW_S, Scale, rng_for
from sample_data.sensors import SiteAlarm
from sample_data.settlements import extent
from sample_data.spatial import county_outline, to_lonlat

HISTORY_DAYS = 365
TYPE_SHARE = {"road_damage": 0.10, "garbage": 0.18, "illegal_building": 0.07, "dispute": 0.10, "fire_hazard": 0.07,
              "water_pollution": 0.04, "grassland_damage": 0.08, "wildlife": 0.05, "public_security": 0.06,
              "livestock": 0.10, "infrastructure": 0.09, "other": 0.06}
DEADLINE_H = {"road_damage": 168, "garbage": 48, "illegal_building": 240, "dispute": 72, "fire_hazard": 12,
              "water_pollution": 24, "grassland_damage": 240, "wildlife": 48, "public_security": 12,
              "livestock": 72, "infrastructure": 168, "other": 120}
PRIORITY_FACTOR = {"low": 1.5, "normal": 1.0, "high": 0.5, "urgent": 0.25}
URGENT_TYPES = ("fire_hazard", "public_security", "water_pollution")
TYPE_DEPARTMENT = {"road_damage": "urban", "garbage": "urban", "illegal_building": "urban", "dispute": "security",
                   "fire_hazard": "emergency", "water_pollution": "ecology", "grassland_damage": "ecology",
                   "wildlife": "ecology", "public_security": "security", "livestock": "economy",
                   "infrastructure": "urban", "other": "services"}
SOURCE_SHARE = {"grid_worker": 0.6, "citizen": 0.17, "hotline": 0.12, "inspection": 0.11}
SOURCE_ZH = {"grid_worker": "网格员", "citizen": "群众", "hotline": "12345热线", "inspection": "部门巡查",
             "sensor": "物联感知设备"}
TITLES = {
    "road_damage": ("{v}路段路面破损", "{v}通村公路塌方", "{v}桥面坑洼积水"),
    "garbage": ("{v}生活垃圾堆放未清运", "{v}河道漂浮垃圾", "{v}垃圾桶满溢"),
    "illegal_building": ("{v}疑似违章搭建", "{v}私自扩建房屋", "{v}占道搭建棚圈"),
    "dispute": ("{v}草场边界纠纷", "{v}邻里纠纷", "{v}虫草采挖纠纷"),
    "fire_hazard": ("{v}电线私拉乱接", "{v}煤炉取暖安全隐患", "{v}消防通道堵塞"),
    "water_pollution": ("{v}河段水体浑浊", "{v}疑似污水直排", "{v}河岸倾倒废弃物"),
    "grassland_damage": ("{v}草场鼠害", "{v}草原非法取土", "{v}草场退化沙化"),
    "wildlife": ("{v}发现受伤野生动物", "{v}棕熊入户肇事", "{v}野生动物损毁围栏"),
    "public_security": ("{v}酒后滋事", "{v}可疑人员聚集", "{v}治安隐患"),
    "livestock": ("{v}牲畜走失", "{v}疑似牲畜疫病", "{v}牛羊越界放牧"),
    "infrastructure": ("{v}路灯损坏", "{v}供水管道破裂", "{v}通信基站故障"),
    "other": ("{v}群众求助", "{v}政策咨询", "{v}其他事项"),
}
# Status mix by age (days): (upper bound of the age, probabilities in EVENT_STATUSES order).
STATUS_BY_AGE = (
    (1.0, (0.35, 0.20, 0.20, 0.13, 0.05, 0.02, 0.03, 0.02)),
    (7.0, (0.01, 0.03, 0.07, 0.10, 0.15, 0.12, 0.47, 0.05)),
    (30.0, (0.0, 0.005, 0.015, 0.03, 0.05, 0.08, 0.77, 0.05)),
    (np.inf, (0.0, 0.0, 0.002, 0.004, 0.004, 0.01, 0.92, 0.06)),
)
ALARM_EVENT_TYPE = {"smoke": "fire_hazard", "temperature": "fire_hazard", "electric_fire": "fire_hazard",
                    "water_quality": "water_pollution", "waste_bin": "garbage"}
ASSIGNED = ("dispatched", "in_progress", "handled", "verified", "closed")
OPEN_STATUSES = ("reported", "accepted", "dispatched", "in_progress", "handled", "verified")
# The default event types' warning windows and automatic escalation (layers/event_types.py DEFAULTS).
WARN_H = {code: warn for code, _, _, warn, _, _, _ in TYPE_DEFAULTS}
AUTO_ESCALATE = {code for code, _, _, _, verify, _, _ in TYPE_DEFAULTS if verify}


@dataclass
class EventPlan:
    """How many events each local day has (base ones and alarms turned into events) and their first ids."""

    seed: int
    first_day_s: int  # local midnight of day 0, in UTC seconds
    counts: np.ndarray
    derived: dict[int, list[SiteAlarm]] = field(default_factory=dict)
    first_id: np.ndarray = field(init=False)
    year_seq: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.first_id = np.concatenate([[0], np.cumsum(self.counts)[:-1]]) + 1
        years = np.array([self.local_date(d).year for d in range(len(self.counts))])
        seq = np.zeros(len(self.counts), int)
        for y in np.unique(years):
            days = np.flatnonzero(years == y)
            seq[days] = np.concatenate([[0], np.cumsum(self.counts[days])[:-1]])
        self.year_seq = seq

    def local_date(self, day: int) -> datetime:
        """Local midnight of a day (as a naive local datetime)."""
        return datetime.fromtimestamp(self.first_day_s + day * DAY_S + LOCAL_OFFSET_S, UTC).replace(tzinfo=None)

    def day_of(self, seconds: int) -> int:
        """The local day a UTC time falls on."""
        return int((seconds - self.first_day_s) // DAY_S)

    @property
    def total(self) -> int:
        """All events of the year."""
        return int(self.counts.sum())


def make_plan(scale: Scale, seed: int, alarms: list[SiteAlarm]) -> EventPlan:
    """Daily counts over the year: more in summer and on weekdays, and today only up to now."""
    rng = rng_for(seed, "events", "plan")
    today = (NOW_S + LOCAL_OFFSET_S) // DAY_S * DAY_S - LOCAL_OFFSET_S
    first = today - HISTORY_DAYS * DAY_S
    n_days = HISTORY_DAYS + 1
    day_starts = first + DAY_S * np.arange(n_days)
    doy = np.array([datetime.fromtimestamp(s + LOCAL_OFFSET_S, UTC).timetuple().tm_yday for s in day_starts])
    weekday = np.array([datetime.fromtimestamp(s + LOCAL_OFFSET_S, UTC).weekday() for s in day_starts])
    weight = (1.0 + 0.35 * np.sin(2 * np.pi * (doy - 110) / 365.0)) * np.where(weekday >= 5, 0.8, 1.0)
    weight[-1] *= 0.3  # today, until noon
    derived: dict[int, list[SiteAlarm]] = {}
    for a in sorted((a for a in alarms if a.to_event_s is not None), key=lambda a: (a.to_event_s, a.site.id)):
        derived.setdefault(int((a.to_event_s - first) // DAY_S), []).append(a)
    n_derived = sum(len(v) for v in derived.values())
    counts = rng.multinomial(max(0, scale.events - n_derived), weight / weight.sum())
    for day, items in derived.items():
        counts[day] += len(items)
    return EventPlan(seed, int(first), counts, derived)


class EventSpace:
    """Where events happen: around settlements, along valley roads and rivers, and out on the pastures."""

    def __init__(self, county: County) -> None:
        self.county = county
        s = county.settlements
        self.sx = np.array([x.x for x in s])
        self.sy = np.array([x.y for x in s])
        self.angle = np.array([x.angle for x in s])
        ab = np.array([extent(x.kind, max(x.buildings, 20)) for x in s])
        self.a, self.b = ab[:, 0], ab[:, 1]
        w = np.array([max(x.buildings, 20) for x in s], float)
        self.weight = w / w.sum()
        self.rivers = np.array([r.line for r in county.rivers if r.order <= 2])
        lengths = shapely.length(self.rivers)
        self.river_weight = lengths / lengths.sum()
        self.village_name = {v.code: v.name for v in county.villages}
        self.township_name = {t.code: t.name_zh for t in county.townships}

    def sample(self, types: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Lon/lat of events of the given types (always inside the county)."""
        n = len(types)
        x, y = np.zeros(n), np.zeros(n)
        todo = np.arange(n)
        for _ in range(30):
            if not todo.size:
                break
            x[todo], y[todo] = self._draw(types[todo], rng)
            lon, lat = to_lonlat(x[todo], y[todo])
            todo = todo[~shapely.contains_xy(county_outline(), lon, lat)]
        if todo.size:  # give up on the pasture: the nearest settlement centre instead
            x[todo], y[todo] = self.sx[0], self.sy[0]
        lon, lat = to_lonlat(x, y)
        return np.round(lon, 7), np.round(lat, 7)

    def _draw(self, types: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n = len(types)
        pick = rng.choice(len(self.sx), n, p=self.weight)
        u, v = rng.normal(0, 0.45, n) * self.a[pick], rng.normal(0, 0.45, n) * self.b[pick]
        ca, sa = np.cos(self.angle[pick]), np.sin(self.angle[pick])
        x, y = self.sx[pick] + u * ca - v * sa, self.sy[pick] + u * sa + v * ca
        roads = np.isin(types, ("road_damage", "infrastructure", "water_pollution"))
        if roads.any():
            k = int(roads.sum())
            lines = self.rivers[rng.choice(len(self.rivers), k, p=self.river_weight)]
            p = shapely.line_interpolate_point(lines, rng.random(k), normalized=True)
            off = np.where(types[roads] == "water_pollution", rng.normal(0, 8, k), rng.choice([-1, 1], k) *
                           rng.uniform(20, 70, k))
            x[roads], y[roads] = shapely.get_x(p) + off, shapely.get_y(p) + off * 0.5
        pasture = np.isin(types, ("grassland_damage", "wildlife", "livestock"))
        if pasture.any():
            k = int(pasture.sum())
            r, th = rng.uniform(1000, 9000, k), rng.uniform(0, 2 * np.pi, k)
            x[pasture] = self.sx[pick[pasture]] + r * np.cos(th)
            y[pasture] = self.sy[pick[pasture]] + r * np.sin(th)
        return x, y


def _categorical(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    u = rng.random(n)
    if cum.ndim == 1:
        return np.searchsorted(cum, u, side="right").clip(0, len(probs) - 1)
    return (u[:, None] >= cum).sum(axis=1).clip(0, probs.shape[-1] - 1)


def day_events(plan: EventPlan, space: EventSpace, day: int) -> tuple[list[Feature], list[int]]:
    """One local day's events as features (ids in report order), and the ids of its alarm-made events."""
    rng = rng_for(plan.seed, "events", day)
    derived = plan.derived.get(day, [])
    n_base = int(plan.counts[day]) - len(derived)
    types = np.array(EVENT_TYPES, dtype=object)[_categorical(rng, np.array([TYPE_SHARE[t] for t in EVENT_TYPES]),
                                                              n_base)]
    sources = np.array(list(SOURCE_SHARE), dtype=object)[_categorical(rng, np.array(list(SOURCE_SHARE.values())),
                                                                        n_base)]
    hour = np.where(sources == "hotline", rng.uniform(0, 24, n_base), np.clip(rng.normal(13.0, 3.2, n_base), 6, 22.9))
    start = plan.first_day_s + day * DAY_S
    t = (start + hour * 3600).astype(np.int64)
    late = t >= NOW_S
    if late.any():  # today: only what has been reported by now
        t[late] = rng.integers(start, NOW_S, int(late.sum()))
    lon, lat = space.sample(types, rng)
    # The alarms turned into events that day join them, at their sites.
    if derived:
        types = np.concatenate([types, [ALARM_EVENT_TYPE.get(a.site.kind, "other") for a in derived]])
        sources = np.concatenate([sources, ["sensor"] * len(derived)])
        t = np.concatenate([t, [a.to_event_s for a in derived]]).astype(np.int64)
        lon = np.concatenate([lon, [a.site.lon for a in derived]])
        lat = np.concatenate([lat, [a.site.lat for a in derived]])
    n = len(t)
    order = np.lexsort((np.arange(n), t))
    types, sources, t, lon, lat = types[order], sources[order], t[order], lon[order], lat[order]
    position = np.empty(n, int)
    position[order] = np.arange(n)
    derived_ids = [int(plan.first_id[day] + position[n_base + k]) for k in range(len(derived))]
    derived_site = {int(position[n_base + k]): a for k, a in enumerate(derived)}
    return _features(plan, space, day, rng, types, sources, t, lon, lat, derived_site), derived_ids


def _features(plan: EventPlan, space: EventSpace, day: int, rng: np.random.Generator, types: np.ndarray,
              sources: np.ndarray, t: np.ndarray, lon: np.ndarray, lat: np.ndarray,
              derived_site: dict[int, SiteAlarm]) -> list[Feature]:
    n = len(t)
    age = (NOW_S - t) / DAY_S
    bucket = np.searchsorted([b for b, _ in STATUS_BY_AGE], age, side="right").clip(0, len(STATUS_BY_AGE) - 1)
    table = np.array([p for _, p in STATUS_BY_AGE])
    status = np.array(EVENT_STATUSES, dtype=object)[_categorical(rng, table[bucket], n)]
    urgent = np.isin(types, URGENT_TYPES)
    prio = np.where(urgent, _categorical(rng, np.array([0.0, 0.3, 0.5, 0.2]), n),
                    _categorical(rng, np.array([0.2, 0.6, 0.17, 0.03]), n))
    priority = np.array(PRIORITIES, dtype=object)[prio]
    span = np.array([DEADLINE_H[x] for x in types]) * 3600 * np.array([PRIORITY_FACTOR[p] for p in priority])
    deadline = t + span.astype(np.int64)
    closed = t + (span * rng.lognormal(np.log(0.55), 0.7, n)).astype(np.int64)
    too_late = closed >= NOW_S
    closed[too_late] = t[too_late] + ((NOW_S - t[too_late]) * rng.uniform(0.2, 0.9, int(too_late.sum()))).astype(
        np.int64)
    towns, grids = space.county.locate(lon, lat)
    points = shapely.points(lon, lat)
    template = rng.integers(0, 3, n)
    citizen = rng.integers(1000, 10000, n)
    worker_handles = rng.random(n) < 0.45
    out = []
    first_of_type: dict[str, int] = {}
    for k in range(n):
        grid, kind, src = grids[k], types[k], sources[k]
        when = datetime.fromtimestamp(int(t[k]), UTC)
        place = space.village_name.get(grid[:12], "") if grid else ""
        alarm = derived_site.get(k)
        title = (f"{alarm.site.name}{METRIC_ZH.get(alarm.metric or '', '')}超限" if alarm
                 else TITLES[kind][int(template[k])].format(v=place))
        dept = TYPE_DEPARTMENT[kind]
        reporter = {"grid_worker": f"worker-{grid}", "citizen": f"citizen-138****{citizen[k]}",
                    "hotline": "hotline-12345", "inspection": f"dept-{dept}",
                    "sensor": f"site-{alarm.site.code}" if alarm else "sensor"}[src]
        assignee = None
        if status[k] in ASSIGNED:
            small = kind in ("garbage", "dispute", "other", "livestock") and worker_handles[k]
            assignee = f"worker-{grid}" if small else f"dept-{dept}"
        seq = plan.year_seq[day] + k + 1
        fid = int(plan.first_id[day] + k)
        state, merged_into = status[k], None
        # One rejected report in three was a duplicate of the day's first report of its type: merged into it.
        if state == "rejected" and kind in first_of_type and k % 3 == 0:
            state, merged_into = "merged", first_of_type[kind]
        first_of_type.setdefault(kind, fid)
        is_open = state in OPEN_STATUSES
        due_state = None
        if is_open and deadline[k] < NOW_S:
            due_state = "overdue"
        elif is_open and deadline[k] - WARN_H.get(kind, 0) * 3600 < NOW_S:
            due_state = "soon_due"
        out.append(Feature(fid, points[k], {
            "event_code": f"EV{plan.local_date(day).year}{seq:06d}", "title": title, "type": kind, "source": src,
            "status": state, "priority": priority[k], "reported_at": when,
            "deadline": datetime.fromtimestamp(int(deadline[k]), UTC),
            "closed_at": datetime.fromtimestamp(int(closed[k]), UTC) if status[k] == "closed" else None,
            "reporter": reporter, "assignee": assignee,
            "department": dept if status[k] in ASSIGNED and assignee == f"dept-{dept}" else None,
            "escalation_level": 1 if due_state == "overdue" and kind in AUTO_ESCALATE else 0,
            "due_state": due_state, "merged_into": merged_into,
            # The sample's events came in before routing flagged borders, with no photos and from no task.
            "near_border": False, "attachment_count": 0, "task_id": None,
            "description": f"{title}。由{SOURCE_ZH[src]}上报，地点：{space.township_name.get(towns[k], '')}{place}。",
            "township_code": towns[k], "grid_code": grid,
        }))
    return out


def iter_events(plan: EventPlan, space: EventSpace, days: range | None = None) -> Iterator[list[Feature]]:
    """The events, one local day per chunk, in id order."""
    for day in days if days is not None else range(len(plan.counts)):
        yield day_events(plan, space, day)[0]
