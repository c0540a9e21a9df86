"""Events (事件): reported, dispatched, handled, closed -- each a point with a type, a status and a history."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, TOWNSHIP

EVENT_TYPES = ("road_damage", "garbage", "illegal_building", "dispute", "fire_hazard", "water_pollution",
               "grassland_damage", "wildlife", "public_security", "livestock", "infrastructure", "other")
EVENT_SOURCES = ("grid_worker", "citizen", "sensor", "hotline", "inspection")
EVENT_STATUSES = ("reported", "accepted", "dispatched", "in_progress", "handled", "verified", "closed",
                  "rejected", "merged")
PRIORITIES = ("low", "normal", "high", "urgent")
# The state of an event is its workflow's: only the dispatch actions (and the deadline job) change these, never
# a feature write (layers/rules.py).
DISPATCH = "the dispatch actions (POST /events/{id}/actions/{action})"
ROUTING = "routing (on report, and the relocate action: POST /events/{id}/actions/relocate)"
ATTACHING = "uploads (POST /events/{id}/attachments)"
DEADLINES = "the deadline job (from the event's deadline)"
FINDINGS = "a finding on a task (POST /tasks/{task}/findings)"

EVENTS = Layer(
    id="events",
    title="Events",
    description="Events reported by grid workers, citizens, sensors and hotlines, and their dispatch status.",
    geometry_type="Point",
    properties=(
        Property("event_code", "string", "Event code", tile_min_zoom=15),
        Property("title", "string", "Title", required=True, tile_min_zoom=15),
        # The codes are data (the event_types table, layers/event_types.py), checked when an event is reported.
        Property("type", "string", "Type", required=True),
        Property("source", "string", "Source", enum=EVENT_SOURCES, tile_min_zoom=14),
        Property("status", "string", "Status", enum=EVENT_STATUSES, set_by=DISPATCH, initial="reported"),
        Property("priority", "string", "Priority", enum=PRIORITIES),
        Property("reported_at", "datetime", "Reported at", required=True, tile_min_zoom=14),
        Property("deadline", "datetime", "Deadline", tile_min_zoom=14, set_by=DISPATCH),
        Property("closed_at", "datetime", "Closed at", tile_min_zoom=14, set_by=DISPATCH),
        Property("reporter", "string", "Reported by", tile_min_zoom=16),
        Property("assignee", "string", "Assigned to", tile_min_zoom=16, set_by=DISPATCH),
        Property("department", "string", "Department handling it", tile_min_zoom=16, set_by=DISPATCH),
        Property("escalation_level", "integer", "Times escalated", tile_min_zoom=14, set_by=DISPATCH),
        # Set by the deadline job: soon_due once inside the type's warning window, overdue past the deadline.
        Property("due_state", "string", "Deadline state", enum=("soon_due", "overdue"), set_by=DEADLINES),
        Property("merged_into", "integer", "Merged into event", tile_min_zoom=16, set_by=DISPATCH),
        # Set by routing (a report, the relocate action): another township or grid lies within the border distance.
        Property("near_border", "boolean", "Near a township or grid border", tile_min_zoom=14, set_by=ROUTING),
        Property("attachment_count", "integer", "Photos and files", tile_min_zoom=14, set_by=ATTACHING),
        Property("description", "string", "Description", in_tiles=False),
        # The patrol or visit task (layers/tasks.py) on which a worker found it, if any.
        Property("task_id", "integer", "Found on task", tile_min_zoom=16, set_by=FINDINGS),
        TOWNSHIP,
        GRID,
    ),
    time_field="reported_at",
    min_zoom=6,
    style=Style("circle", "#e67e22", radius=5,
                match=("status", (("closed", "#7f8c8d"), ("reported", "#e74c3c"), ("dispatched", "#f1c40f")))),
    writers=("operator", "leader", "worker"),
    cluster_counts=(("open_count", "status", ("reported", "accepted", "dispatched", "in_progress", "handled",
                                               "verified")),
                    ("overdue_count", "due_state", ("overdue",))),
    live=True,
    geometry_set_by="the relocate action (POST /events/{id}/actions/relocate), which routes it again",
    keywords=("events", "dispatch"),
    h3_cells=True,
    mercator_copy=True,
)
