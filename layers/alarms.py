"""Alarms (告警): readings past a threshold, overdue events, workers gone silent."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, TOWNSHIP

ALARM_LEVELS = ("info", "warning", "critical")
ALARM_STATUSES = ("raised", "acknowledged", "resolved")
ALARM_KINDS = ("threshold", "rate", "overdue_event", "worker_silent", "site_offline")
# The state of an alarm is its lifecycle's: only the alarm actions and the rule evaluation change these, never a
# feature write (layers/rules.py).
LIFECYCLE = "the alarm actions (POST /alarms/{id}/actions/{action}) and the alarm rules"
# The default threshold per metric: (comparison, limit, alarm level). The sample generator crosses them, and
# `onemap db upgrade` seeds the alarm_rules table from them (layers/alarm_rules.py); the rules are data after.
THRESHOLDS: dict[str, tuple[tuple[str, float, str], ...]] = {
    "smoke_density": ((">", 0.15, "critical"),),
    "temperature": ((">", 57.0, "critical"),),
    "residual_current": ((">", 300.0, "warning"),),
    "cable_temperature": ((">", 70.0, "warning"),),
    "ph": (("<", 6.5, "warning"), (">", 8.5, "warning")),
    "turbidity": ((">", 20.0, "warning"),),
    "conductivity": ((">", 800.0, "warning"),),
    "dissolved_oxygen": (("<", 5.0, "warning"),),
    "cod": ((">", 20.0, "warning"),),
    "pm25": ((">", 75.0, "warning"),),
    "pm10": ((">", 150.0, "warning"),),
    "aqi": ((">", 150.0, "warning"),),
    "fill_level": ((">", 90.0, "info"),),
}

ALARMS = Layer(
    id="alarms",
    title="Alarms",
    description="Alarms raised from monitoring-site readings and from overdue work, with their lifecycle.",
    geometry_type="Point",
    properties=(
        Property("alarm_kind", "string", "Alarm kind", enum=ALARM_KINDS),
        Property("site_id", "integer", "Site id"),
        Property("site_kind", "string", "Site kind", tile_min_zoom=14),
        Property("metric", "string", "Metric"),
        Property("value", "number", "Value"),
        Property("threshold", "number", "Threshold"),
        Property("level", "string", "Level", enum=ALARM_LEVELS),
        Property("status", "string", "Status", enum=ALARM_STATUSES, set_by=LIFECYCLE, initial="raised"),
        Property("message", "string", "Message", in_tiles=False),
        Property("raised_at", "datetime", "Raised at", required=True),
        Property("acknowledged_at", "datetime", "Acknowledged at", tile_min_zoom=16, set_by=LIFECYCLE),
        Property("resolved_at", "datetime", "Resolved at", tile_min_zoom=16, set_by=LIFECYCLE),
        Property("event_id", "integer", "Event id", tile_min_zoom=16, set_by=LIFECYCLE),
        # One open alarm per (site, rule): a repeat counts, keeps the last and the worst value.
        Property("rule_id", "integer", "Rule id", tile_min_zoom=16, set_by=LIFECYCLE),
        Property("count", "integer", "Readings past the limit", tile_min_zoom=14, set_by=LIFECYCLE),
        Property("peak", "number", "Worst value", tile_min_zoom=14, set_by=LIFECYCLE),
        Property("last_value", "number", "Last value past the limit", tile_min_zoom=16, set_by=LIFECYCLE),
        Property("last_at", "datetime", "Last seen past the limit", tile_min_zoom=16, set_by=LIFECYCLE),
        TOWNSHIP,
        GRID,
    ),
    time_field="raised_at",
    min_zoom=6,
    style=Style("circle", "#c0392b", radius=7,
                match=("status", (("resolved", "#7f8c8d"), ("acknowledged", "#f39c12")))),
    live=True,
    cluster_counts=(("raised_count", "status", ("raised",)),),
    h3_cells=True,
    keywords=("alarms",),
)
