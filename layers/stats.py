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
from geoserver.features import FeatureQuery
from geoserver.store import Store
from layers.dispatch import OPEN, now

EVENT_GROUPS = ("township_code", "grid_code", "type", "source", "status", "priority", "day", "week", "month")
MAX_GROUPS = 3


def _and(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    return b if a is None else {"op": "and", "args": [a, b]}


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
    # Handling: hours from report to closing of the closed events, computed in the database.
    closed = {"op": "=", "args": [{"property": "status"}, "closed"]}
    took = store.durations("events", replace(query, filter=_and(query.filter, closed)), scope, "reported_at",
                           "closed_at", by="deadline", quantiles=(0.5, 0.9))
    p50, p90 = (None if v is None else round(v, 2) for v in (took.quantiles[0.5], took.quantiles[0.9]))
    return {"total": total, "groups": groups, "overdue_now": overdue,
            "handling": {"closed": took.count, "on_time": took.in_time,
                         "on_time_rate": round(took.in_time / took.count, 4) if took.count else None,
                         "hours_p50": p50, "hours_p90": p90}}
