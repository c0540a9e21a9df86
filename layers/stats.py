"""Statistics of events (事件统计): counts grouped by township, grid, type, source, status, day, week or month;
overdue now; handling times and the on-time rate -- always within the caller's read scope and the same filter
language as the items, so a count equals the numberMatched of the same query."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from geoserver.access import Principal, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput
from geoserver.features import MAX_LIMIT, FeatureQuery
from geoserver.store import Store
from layers.dispatch import OPEN, now

EVENT_GROUPS = ("township_code", "grid_code", "type", "source", "status", "priority", "day", "week", "month")
MAX_GROUPS = 3


def _and(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    return b if a is None else {"op": "and", "args": [a, b]}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 2)


def event_stats(store: Store, catalog: Catalog, principal: Principal, query: FeatureQuery,
                group_by: tuple[str, ...], at: datetime | None = None) -> dict[str, Any]:
    """Grouped counts, overdue-now and handling figures of the events the caller may read."""
    for g in group_by:
        if g not in EVENT_GROUPS:
            raise BadInput(f"group_by: {g!r} is not one of {', '.join(EVENT_GROUPS)}", parameter="group_by")
    if len(group_by) > MAX_GROUPS or len(set(group_by)) != len(group_by):
        raise BadInput(f"group_by takes at most {MAX_GROUPS} different groups", parameter="group_by")
    scope = scope_for(principal, catalog.get("events"), "read")
    at = at or now()
    groups = [{**dict(zip(group_by, values, strict=True)), "count": n}
              for values, n in store.aggregate("events", query, scope, group_by)]
    total = sum(g["count"] for g in groups)
    open_ = {"op": "in", "args": [{"property": "status"}, list(OPEN)]}
    # Past the deadline now, or marked overdue by the deadline job (whose clock is the one that counts).
    late = {"op": "or", "args": [{"op": "<", "args": [{"property": "deadline"}, {"timestamp": at.isoformat()}]},
                                 {"op": "=", "args": [{"property": "due_state"}, "overdue"]}]}
    [(_, overdue)] = store.aggregate("events", replace(query, filter=_and(query.filter, _and(open_, late))), scope, ())
    hours, on_time = _handling(store, query, scope)
    return {"total": total, "groups": groups, "overdue_now": overdue,
            "handling": {"closed": len(hours), "on_time": on_time,
                         "on_time_rate": round(on_time / len(hours), 4) if hours else None,
                         "hours_p50": _percentile(hours, 0.5), "hours_p90": _percentile(hours, 0.9)}}


def _handling(store: Store, query: FeatureQuery, scope) -> tuple[list[float], int]:
    """Hours from report to closing of every closed event matched, sorted, and how many met their deadline."""
    closed = {"op": "=", "args": [{"property": "status"}, "closed"]}
    page_query = replace(query, filter=_and(query.filter, closed), properties=("reported_at", "closed_at", "deadline"),
                         with_geometry=False, limit=MAX_LIMIT, offset=0, sortby=())
    hours: list[float] = []
    on_time = 0
    while True:
        page = store.query("events", page_query, scope)
        for f in page.features:
            start, end, deadline = (f.properties.get(k) for k in ("reported_at", "closed_at", "deadline"))
            if start and end:
                hours.append((end - start).total_seconds() / 3600)
                on_time += bool(deadline and end <= deadline)
        if len(page.features) < MAX_LIMIT:
            break
        page_query = replace(page_query, offset=page_query.offset + MAX_LIMIT)
    hours.sort()
    return hours, on_time
