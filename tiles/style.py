"""The MapLibre style of the one-map, derived from the catalog's default styles."""

from __future__ import annotations

from geoserver.catalog import Layer, Style
from geoserver.vectortile import CLUSTER_COUNT
from tiles.heatmap import HEATMAP
from tiles.heatmap import style_layers as heatmap_style_layers

SOURCE = "onemap"


def _color(style: Style) -> object:
    if not style.match:
        return style.color
    prop, pairs = style.match
    expr: list[object] = ["match", ["get", prop]]
    for value, colour in pairs:
        expr += [value, colour]
    return [*expr, style.color]


def _style_layer(layer: Layer) -> dict | None:
    s = layer.style
    if s is None:
        return None
    base = {"id": layer.id, "source": SOURCE, "source-layer": layer.id, "minzoom": layer.min_zoom,
            "maxzoom": 24 if layer.max_zoom >= 22 else layer.max_zoom + 1}
    colour = _color(s)
    if s.kind == "fill":
        paint = {"fill-color": colour, "fill-opacity": s.opacity}
        if s.outline:
            paint["fill-outline-color"] = s.outline
        return {**base, "type": "fill", "paint": paint}
    if s.kind == "line":
        return {**base, "type": "line", "paint": {"line-color": colour, "line-width": s.width,
                                                   "line-opacity": s.opacity}}
    if s.kind == "fill-extrusion":
        height = ["coalesce", ["get", s.height_property], 3] if s.height_property else 3
        return {**base, "type": "fill-extrusion",
                "paint": {"fill-extrusion-color": colour, "fill-extrusion-height": height,
                          "fill-extrusion-opacity": s.opacity}}
    # At their lower zooms points arrive as clusters with a count: bigger circles for bigger clusters.
    radius = ["step", ["coalesce", ["get", CLUSTER_COUNT], 1], s.radius, 10, s.radius * 1.6, 100, s.radius * 2.4]
    return {**base, "type": "circle",
            "paint": {"circle-color": colour, "circle-radius": radius, "circle-opacity": s.opacity,
                      "circle-stroke-color": "#ffffff", "circle-stroke-width": 1}}


def maplibre_style(layers: list[Layer], tilejson_url: str, center: list[float] | None = None) -> dict:
    """A MapLibre GL style (spec v8) drawing the layers from our combined tiles."""
    style_layers: list[dict] = [{"id": "background", "type": "background", "paint": {"background-color": "#f4f1ea"}}]
    for layer in layers:
        if layer.id == HEATMAP:
            style_layers += heatmap_style_layers(SOURCE)
            continue
        sl = _style_layer(layer)
        if sl is not None:
            style_layers.append(sl)
    doc: dict = {
        "version": 8,
        "name": "onemap",
        "sources": {SOURCE: {"type": "vector", "url": tilejson_url}},
        "layers": style_layers,
    }
    if center:
        doc["center"] = center[:2]
        doc["zoom"] = center[2] if len(center) > 2 else 10
    return doc
