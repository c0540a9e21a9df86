"""The tables of the event dispatch centre that are not map layers: event types, each event's timeline, and
who works in which grid (网格入格)."""

from geoserver.catalog import Property, Table
from layers.common import timeline_table

EVENT_TYPE_TABLE = Table(
    id="event_types",
    title="Event types",
    description="Kinds of event with their handling deadline, warning, verification and escalation path.",
    columns=(
        Property("code", "string", "Code", required=True),
        Property("name", "string", "Name", required=True),
        Property("deadline_hours", "number", "Handling deadline (hours from report)"),
        Property("warn_hours", "number", "Soon-due warning (hours before the deadline)"),
        Property("verify_required", "boolean", "Verification required before closing"),
        Property("departments", "json", "Departments bound by default"),
        Property("escalation", "json", "Escalation path (grid, township, county, department)"),
        Property("auto_escalate", "boolean", "Escalate automatically when overdue"),
        Property("retired", "boolean", "Retired (no new reports)"),
    ),
)

EVENT_TIMELINE = timeline_table(
    "event_timeline", "Event timeline",
    "Every transition, assignment, note and automatic step of every event.",
    "event_id", "Event",
)

GRID_BINDINGS = Table(
    id="grid_bindings",
    title="Grid bindings",
    description="The team of each grid (leader, full-time and part-time workers, instructor) and the "
                "department accounts bound to it.",
    columns=(
        Property("grid_code", "string", "Grid", required=True),
        Property("username", "string", "Account", required=True),
        Property("role", "string", "Role in the grid", required=True,
                 enum=("leader", "full_time", "part_time", "instructor", "department")),
    ),
)

TABLES = (EVENT_TYPE_TABLE, EVENT_TIMELINE, GRID_BINDINGS)
