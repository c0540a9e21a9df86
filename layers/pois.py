"""Thematic points: party organisations, enterprises, scenic spots, government service halls."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, NAME, TOWNSHIP

POI_CATEGORIES = ("party_org", "enterprise", "scenic_spot", "service_hall")
POI_DEPARTMENTS = {"party_org": "organisation", "enterprise": "economy", "scenic_spot": "tourism",
                   "service_hall": "services"}

POIS = Layer(
    id="pois",
    title="Thematic points",
    description="Party organisations, enterprises, scenic spots and government service halls.",
    geometry_type="Point",
    properties=(
        NAME,
        Property("category", "string", "Category", required=True, enum=POI_CATEGORIES),
        Property("address", "string", "Address", tile_min_zoom=16),
        Property("phone", "string", "Phone", in_tiles=False),
        Property("department", "string", "Department"),
        TOWNSHIP,
        GRID,
    ),
    min_zoom=8,
    style=Style("circle", "#27ae60", radius=5,
                match=("category", (("party_org", "#c0392b"), ("scenic_spot", "#2ecc71"),
                                    ("service_hall", "#2e86c1")))),
    public=True,
    departments=("organisation", "economy", "tourism", "services"),
    keywords=("thematic",),
    mercator_copy=True,
)
