"""Patrols (巡查) of grid workers and the GPS track points that make them up."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, TOWNSHIP

PATROL_STATUSES = ("active", "finished")
TRAVEL_MODES = ("walking", "riding", "driving")

PATROLS = Layer(
    id="patrols",
    title="Patrols",
    description="One patrol of one grid worker: its track as a line, times, distance and duration.",
    geometry_type="LineString",
    properties=(
        Property("worker", "string", "Grid worker", required=True),
        Property("started_at", "datetime", "Started at", required=True, tile_min_zoom=14),
        Property("ended_at", "datetime", "Ended at", tile_min_zoom=14),
        Property("status", "string", "Status", enum=PATROL_STATUSES),
        Property("mode", "string", "Travel mode", enum=TRAVEL_MODES),
        Property("distance_m", "number", "Distance (m)", tile_min_zoom=14),
        Property("duration_s", "integer", "Duration (s)", tile_min_zoom=14),
        Property("point_count", "integer", "GPS fixes", tile_min_zoom=14),
        Property("task_id", "integer", "Task", in_tiles=False),
        Property("last_fix_at", "datetime", "Last fix or activity", in_tiles=False),
        Property("close_reason", "string", "How it ended (stopped, auto-closed)", in_tiles=False),
        TOWNSHIP,
        GRID,
    ),
    time_field="started_at",
    time_end_field="ended_at",
    min_zoom=10,
    style=Style("line", "#2980b9", width=2.0),
    writers=("worker",),  # grid workers upload their own patrols
    live=True,
    keywords=("patrols", "tracks"),
)

TRACK_POINTS = Layer(
    id="track_points",
    title="Track points",
    description="GPS fixes of patrols (every 10-30 s), as uploaded from the phones.",
    geometry_type="Point",
    properties=(
        Property("patrol_id", "integer", "Patrol id", required=True),
        Property("worker", "string", "Grid worker", required=True),
        Property("recorded_at", "datetime", "Recorded at", required=True),
        Property("speed", "number", "Speed (m/s)"),
        Property("accuracy", "number", "Accuracy (m)"),
        Property("heading", "number", "Heading (degrees)", in_tiles=False),
        Property("altitude", "number", "Altitude (m)", in_tiles=False),
        Property("battery", "number", "Battery (%)", in_tiles=False),
        # The upload's idempotency key: the phone's point id, else the fix time (unique within a patrol).
        Property("point_key", "string", "Point key", in_tiles=False),
        TOWNSHIP,
        GRID,
    ),
    time_field="recorded_at",
    min_zoom=14,
    style=Style("circle", "#3498db", radius=2),
    writers=("worker",),
    live=True,
    keywords=("patrols", "tracks"),
)
