"""Statistics of alarms (告警统计): counts grouped by township, grid, site kind, metric, level, status, kind or
time, and how many are open now -- within the caller's read scope, in SQL, with the items' filter language."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from geoserver.access import Principal, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput
from geoserver.features import FeatureQuery
from geoserver.store import Store

ALARM_GROUPS = ("township_code", "grid_code", "site_kind", "metric", "level", "status", "alarm_kind", "day",
                "week", "month")
MAX_GROUPS = 3


def alarm_stats(store: Store, catalog: Catalog, principal: Principal, query: FeatureQuery,
                group_by: tuple[str, ...]) -> dict[str, Any]:
    """Grouped counts and open-now of the alarms the caller may read."""
    for g in group_by:
        if g not in ALARM_GROUPS:
            raise BadInput(f"group_by: {g[:64]!r} is not one of {', '.join(ALARM_GROUPS)}", parameter="group_by")
    if len(group_by) > MAX_GROUPS or len(set(group_by)) != len(group_by):
        raise BadInput(f"group_by takes at most {MAX_GROUPS} different groups", parameter="group_by")
    scope = scope_for(principal, catalog.get("alarms"), "read")
    groups = [{**dict(zip(group_by, values, strict=True)), "count": n}
              for values, n in store.aggregate("alarms", query, scope, group_by)]
    still_open = {"op": "in", "args": [{"property": "status"}, ["raised", "acknowledged"]]}
    both = still_open if query.filter is None else {"op": "and", "args": [query.filter, still_open]}
    [(_, open_now)] = store.aggregate("alarms", replace(query, filter=both), scope, ())
    return {"total": sum(g["count"] for g in groups), "groups": groups, "open_now": open_now}
