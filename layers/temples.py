"""Temples (寺院), managed by the religious-affairs department."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, NAME, TOWNSHIP

SECTS = ("Nyingma", "Jonang", "Kagyu", "Gelug", "Sakya")

TEMPLES = Layer(
    id="temples",
    title="Temples",
    description="Temples with sect, number of monks and buildings.",
    geometry_type="Point",
    properties=(
        NAME,
        TOWNSHIP,
        GRID,
        Property("sect", "string", "Sect", enum=SECTS),
        Property("monks", "integer", "Monks"),
        Property("buildings", "integer", "Buildings"),
        Property("founded", "integer", "Year founded"),
        Property("contact", "string", "Contact", in_tiles=False),
    ),
    min_zoom=6,
    style=Style("circle", "#8e44ad", radius=6, label="name", label_min_zoom=12),
    departments=("religion",),
    keywords=("temples", "religion"),
    mercator_copy=True,
)
