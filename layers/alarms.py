"""Alarms (告警): readings past a threshold, overdue events, workers gone silent."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, TOWNSHIP

ALARM_LEVELS = ("info", "warning", "critical")
ALARM_STATUSES = ("raised", "acknowledged", "resolved")
ALARM_KINDS = ("threshold", "overdue_event", "worker_silent", "site_offline")

ALARMS = Layer(
    id="alarms",
    title="Alarms",
    description="Alarms raised from monitoring-site readings and from overdue work, with their lifecycle.",
    geometry_type="Point",
    properties=(
        Property("alarm_kind", "string", "Alarm kind", enum=ALARM_KINDS),
        Property("site_id", "integer", "Site id"),
        Property("metric", "string", "Metric"),
        Property("value", "number", "Value"),
        Property("threshold", "number", "Threshold"),
        Property("level", "string", "Level", enum=ALARM_LEVELS),
        Property("status", "string", "Status", enum=ALARM_STATUSES),
        Property("message", "string", "Message", in_tiles=False),
        Property("raised_at", "datetime", "Raised at", required=True),
        Property("acknowledged_at", "datetime", "Acknowledged at", tile_min_zoom=16),
        Property("resolved_at", "datetime", "Resolved at", tile_min_zoom=16),
        Property("event_id", "integer", "Event id", tile_min_zoom=16),
        TOWNSHIP,
        GRID,
    ),
    time_field="raised_at",
    min_zoom=6,
    style=Style("circle", "#c0392b", radius=7,
                match=("status", (("resolved", "#7f8c8d"), ("acknowledged", "#f39c12")))),
    live=True,
    keywords=("alarms",),
)
