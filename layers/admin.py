"""Administrative areas: townships (8 townships + 1 town), villages and grid cells."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, NAME, TOWNSHIP

TOWNSHIP_KINDS = ("township", "town")
GRID_KINDS = ("basic", "party", "special")

TOWNSHIPS = Layer(
    id="townships",
    title="Townships",
    description="The county's townships and its town (乡镇), each with its code.",
    geometry_type="MultiPolygon",
    properties=(
        TOWNSHIP,
        NAME,
        Property("name_zh", "string", "Chinese name"),
        Property("kind", "string", "Township or town", enum=TOWNSHIP_KINDS),
        Property("population", "integer", "Population"),
        Property("area_km2", "number", "Area (km²)"),
    ),
    has_grid=False,
    locate_on_write=False,
    min_zoom=0,
    style=Style("line", "#1f4e79", width=2.0, opacity=1.0, label="name_zh", label_min_zoom=8),
    public=True,
    keywords=("administrative",),
)

VILLAGES = Layer(
    id="villages",
    title="Villages",
    description="Administrative villages and town communities (村/社区).",
    geometry_type="MultiPolygon",
    properties=(
        Property("village_code", "string", "Village code", required=True),
        NAME,
        TOWNSHIP,
        Property("population", "integer", "Population"),
        Property("households", "integer", "Households"),
    ),
    has_grid=False,
    locate_on_write=False,
    min_zoom=8,
    style=Style("line", "#5b7db1", width=1.0, opacity=0.9, label="name", label_min_zoom=11),
    public=True,
    keywords=("administrative",),
)

GRIDS = Layer(
    id="grids",
    title="Grid cells",
    description="Governance grid cells (网格): basic, party-building or special; key grids flagged.",
    geometry_type="MultiPolygon",
    properties=(
        GRID,
        NAME,
        TOWNSHIP,
        Property("village_code", "string", "Village code"),
        Property("grid_kind", "string", "Grid kind", enum=GRID_KINDS),
        Property("is_key", "boolean", "Key grid"),
        Property("leader", "string", "Grid leader"),
        Property("full_time_workers", "integer", "Full-time grid workers"),
        Property("part_time_workers", "integer", "Part-time grid workers"),
        Property("households", "integer", "Households"),
    ),
    locate_on_write=False,
    min_zoom=10,
    style=Style("line", "#e07b00", width=1.0, opacity=0.9, label="name", label_min_zoom=14),
    keywords=("administrative", "grid"),
)
