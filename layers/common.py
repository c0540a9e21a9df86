"""Declarations shared by many layers and workflows: the permission keys, and the shape of a timeline."""

from geoserver.catalog import Property, Table

TOWNSHIP = Property("township_code", "string", "Township code", tile_min_zoom=0)
GRID = Property("grid_code", "string", "Grid code", tile_min_zoom=12)
NAME = Property("name", "string", "Name")


def timeline_table(id: str, title: str, description: str, owner: str, owner_title: str) -> Table:
    """A workflow's timeline: one row per change of one of its records (who, when, which action, the status
    before and after, a note and the details), the owning record named by `owner`."""
    return Table(
        id=id,
        title=title,
        description=description,
        columns=(
            Property(owner, "integer", owner_title, required=True),
            Property("at", "datetime", "When", required=True),
            Property("actor", "string", "Who"),
            Property("action", "string", "Action", required=True),
            Property("from_status", "string", "Status before"),
            Property("to_status", "string", "Status after"),
            Property("note", "string", "Note"),
            Property("data", "json", "Details"),
        ),
    )
