"""Alarms (告警): thresholds crossed and sites gone offline, overdue events, workers gone silent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import shapely

from geoserver.features import Feature
from layers.sites import METRIC_ZH, METRICS
from sample_data.county import Grid
from sample_data.events import EventPlan, EventSpace, day_events
from sample_data.scales import DAY_S, NOW_S, Scale, rng_for
from sample_data.sensors import SiteAlarm

OPEN_STATUSES = ("reported", "accepted", "dispatched", "in_progress")
# What the rule evaluation keeps on an alarm it raises (layers/alarm_lifecycle.py); the sample's alarms predate
# the rules, so they name none.
NO_RULE = {"rule_id": None, "count": None, "peak": None, "last_value": None, "last_at": None}
LONGEST_DEADLINE_DAYS = 16  # 240 h x 1.5 for a low-priority event, rounded up


@dataclass
class AlarmRow:
    """One alarm before ids are given (sorted by when it was raised)."""

    raised_s: int
    order: tuple
    point: shapely.Point
    props: dict


def _dt(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(int(seconds), UTC)


def _status(ack: int | None, resolved: int | None) -> str:
    return "resolved" if resolved is not None else ("acknowledged" if ack is not None else "raised")


def _site_rows(alarms: list[SiteAlarm], event_ids: dict[int, int]) -> list[AlarmRow]:
    rows = []
    for a in alarms:
        s = a.site
        if a.kind == "threshold":
            unit = METRICS[s.kind][a.metric]
            above = a.value > a.threshold
            message = (f"{s.name}{METRIC_ZH[a.metric]}{a.value:g}{unit}，{'高于' if above else '低于'}阈值"
                       f"{a.threshold:g}{unit}")
        else:
            message = f"{s.name}离线超过1小时"
        rows.append(AlarmRow(a.raised_s, (0, s.id, a.metric or ""), shapely.Point(s.lon, s.lat), {
            **NO_RULE, "site_kind": s.kind, "alarm_kind": a.kind, "site_id": s.id, "metric": a.metric, "value": a.value, "threshold": a.threshold,
            "level": a.level, "status": _status(a.acknowledged_s, a.resolved_s), "message": message,
            "raised_at": _dt(a.raised_s), "acknowledged_at": _dt(a.acknowledged_s),
            "resolved_at": _dt(a.resolved_s), "event_id": event_ids.get(id(a)),
            "township_code": s.township_code, "grid_code": s.grid_code}))
    return rows


def derived_event_ids(plan: EventPlan, space: EventSpace) -> dict[int, int]:
    """For each alarm turned into an event (by object id), the id of that event."""
    out = {}
    for day, alarms in plan.derived.items():
        _, ids = day_events(plan, space, day)
        out.update({id(a): i for a, i in zip(alarms, ids, strict=True)})
    return out


def _overdue_rows(plan: EventPlan, space: EventSpace, scale: Scale, seed: int) -> list[AlarmRow]:
    """An alarm for every event whose deadline passed within the sensor window while it was still open."""
    rng = rng_for(seed, "alarms", "overdue")
    window = NOW_S - scale.sensor_days * DAY_S
    first = max(0, plan.day_of(window) - LONGEST_DEADLINE_DAYS)
    rows = []
    for day in range(first, len(plan.counts)):
        for f in day_events(plan, space, day)[0]:
            p = f.properties
            deadline = int(p["deadline"].timestamp())
            if not (window <= deadline < NOW_S) or p["status"] == "rejected":
                continue
            closed = p["closed_at"]
            late_close = closed is not None and closed.timestamp() > deadline
            if p["status"] not in OPEN_STATUSES and not late_close:
                continue
            resolved = int(closed.timestamp()) if late_close else None
            ack = deadline + int(rng.integers(600, 7200)) if rng.random() < 0.6 else None
            if ack is not None and ack >= (resolved or NOW_S):
                ack = None
            rows.append(AlarmRow(deadline, (1, f.id, ""), f.geometry, {
                **NO_RULE, "site_kind": None, "alarm_kind": "overdue_event", "site_id": None, "metric": None, "value": None, "threshold": None,
                "level": "critical" if p["priority"] in ("high", "urgent") else "warning",
                "status": _status(ack, resolved), "message": f"事件{p['event_code']}（{p['title']}）已超过办理时限",
                "raised_at": _dt(deadline), "acknowledged_at": _dt(ack), "resolved_at": _dt(resolved),
                "event_id": f.id, "township_code": p["township_code"], "grid_code": p["grid_code"]}))
    return rows


def _silent_rows(spells: list[tuple[Grid, int, int | None]], seed: int) -> list[AlarmRow]:
    rng = rng_for(seed, "alarms", "silent")
    rows = []
    for grid, raised, resolved in spells:
        ack = raised + int(rng.integers(900, 5400)) if rng.random() < 0.5 else None
        if ack is not None and ack >= (resolved or NOW_S):
            ack = None
        rows.append(AlarmRow(raised, (2, grid.code, ""), shapely.Point(*grid.home), {
            **NO_RULE, "site_kind": None, "alarm_kind": "worker_silent", "site_id": None, "metric": None, "value": None, "threshold": None,
            "level": "warning", "status": _status(ack, resolved),
            "message": f"网格员 worker-{grid.code}（{grid.name}）超过36小时无巡查轨迹",
            "raised_at": _dt(raised), "acknowledged_at": _dt(ack), "resolved_at": _dt(resolved), "event_id": None,
            "township_code": grid.township_code, "grid_code": grid.code}))
    return rows


def alarm_features(site_alarms: list[SiteAlarm], plan: EventPlan, space: EventSpace,
                   spells: list[tuple[Grid, int, int | None]], scale: Scale, seed: int) -> list[Feature]:
    """Every alarm, ids in the order they were raised."""
    rows = (_site_rows(site_alarms, derived_event_ids(plan, space)) + _overdue_rows(plan, space, scale, seed)
            + _silent_rows(spells, seed))
    rows.sort(key=lambda r: (r.raised_s, r.order))
    return [Feature(k + 1, r.point, r.props) for k, r in enumerate(rows)]
