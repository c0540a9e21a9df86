"""Building footprints with floors and height: the 3D white model (建筑白模)."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, NAME, TOWNSHIP

BUILDING_USES = ("residential", "commercial", "public", "religious", "industrial", "agricultural")

BUILDINGS = Layer(
    id="buildings",
    title="Buildings",
    description="Building footprints with floors and height, extruded into the white model.",
    geometry_type="Polygon",
    properties=(
        TOWNSHIP,
        GRID,
        Property("floors", "integer", "Floors"),
        Property("height", "number", "Height (m)"),
        Property("use", "string", "Use", enum=BUILDING_USES),
        Property("year_built", "integer", "Year built", tile_min_zoom=16),
        Property("is_key", "boolean", "Key building"),
        Property("name", NAME.type, "Name", tile_min_zoom=16),
    ),
    min_zoom=13,
    style=Style("fill-extrusion", "#d9d9d9", height_property="height", opacity=0.9,
                match=("use", (("religious", "#c0392b"), ("public", "#2e86c1"))),
                label="name", label_min_zoom=16, label_where=("is_key", True)),
    keywords=("buildings", "3d"),
)
