"""The tables of patrol and visit tasks (巡查走访): each task, and the history of every step taken on it."""

from geoserver.catalog import Property, Table
from layers.common import timeline_table

TASK_KINDS = ("patrol", "visit")
TASK_STATUSES = ("open", "in_progress", "done", "cancelled")

TASKS = Table(
    id="tasks",
    title="Patrol and visit tasks",
    description="Work given to a grid or a worker: what to patrol or visit, by when, and how far it got.",
    columns=(
        Property("title", "string", "Title", required=True),
        Property("description", "string", "Description"),
        Property("kind", "string", "Kind", required=True, enum=TASK_KINDS),
        Property("status", "string", "Status", required=True, enum=TASK_STATUSES),
        Property("township_code", "string", "Township", required=True),
        Property("grid_code", "string", "Grid"),
        Property("assignee", "string", "Assigned to"),
        Property("due_at", "datetime", "Due", required=True),
        # [{"layer", "fid", "visited_at", "visited_by", "note"}]: the buildings, sites and temples to visit.
        Property("objects", "json", "Objects to visit"),
        Property("created_by", "string", "Created by"),
        Property("created_at", "datetime", "Created at", required=True),
        Property("started_at", "datetime", "Started at"),
        Property("finished_at", "datetime", "Done or cancelled at"),
    ),
)

TASK_HISTORY = timeline_table(
    "task_history", "Task history",
    "Every step of every task: creation, edits, start, visits, findings, completion, cancellation.",
    "task_id", "Task",
)

TABLES = (TASKS, TASK_HISTORY)
