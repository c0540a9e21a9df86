"""The MapLibre style of the one-map, derived from the catalog's default styles."""

from __future__ import annotations

from geoserver.catalog import Layer, Style
from geoserver.vectortile import CLUSTER_COUNT
from tiles.heatmap import HEATMAP
from tiles.heatmap import style_layers as heatmap_style_layers

SOURCE = "onemap"
FONT = "Sans Regular"  # tiles/glyphs.py serves every font stack with the server's one label font
# Base maps (basemaps/): the raster sources drawn under the features when the server has them; the first shown.
BASEMAPS = ("imagery", "hillshade", "dem")


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


def _label_layer(layer: Layer) -> dict | None:
    """A symbol layer writing the layer's label property (falling back to `name`), halo for legibility."""
    s = layer.style
    if s is None or s.label is None:
        return None
    text = ["coalesce", ["get", s.label], ["get", "name"]] if s.label != "name" else ["get", "name"]
    doc: dict = {
        "id": f"{layer.id}-label", "type": "symbol", "source": SOURCE, "source-layer": layer.id,
        "minzoom": max(s.label_min_zoom, layer.min_zoom),
        "layout": {"text-field": text, "text-font": [FONT], "text-size": 15 if layer.id == "townships" else 12,
                   "text-max-width": 8, "symbol-avoid-edges": not layer.geometry_type.endswith("Point"),
                   **({"text-offset": [0, 1.1], "text-anchor": "top"} if layer.geometry_type.endswith("Point")
                      else {})},
        "paint": {"text-color": s.outline or s.color if s.kind != "fill-extrusion" else "#333333",
                  "text-halo-color": "#ffffff", "text-halo-width": 1.5},
    }
    if s.label_where is not None:
        doc["filter"] = ["==", ["get", s.label_where[0]], s.label_where[1]]
    return doc


def _basemap_layers(base: str, rasters: tuple[str, ...],
                    bounds: dict[str, tuple[float, float, float, float]] | None = None) -> tuple[dict, list[dict]]:
    """Raster sources and layers for the server's base maps (OGC API map tiles), the first one visible; a source's
    `bounds` (its coverage, lon/lat) keeps the browser from asking for the empty tiles around it."""
    sources: dict = {}
    layers: list[dict] = []
    shown = [r for r in BASEMAPS if r in rasters]
    for i, rid in enumerate(shown):
        # WebP keeps the transparency outside the coverage (JPEG paints it white) at ~1/9 of PNG's bytes.
        fmt = "webp"
        sources[rid] = {"type": "raster", "tileSize": 256, "maxzoom": 18,
                        "tiles": [f"{base}/collections/{rid}/map/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}?f={fmt}"]}
        if bounds and rid in bounds:
            sources[rid]["bounds"] = [round(v, 6) for v in bounds[rid]]
        layers.append({"id": rid, "type": "raster", "source": rid, "metadata": {"onemap:group": "basemap"},
                       "layout": {"visibility": "visible" if i == 0 else "none"}})
    return sources, layers


def maplibre_style(layers: list[Layer], tilejson_url: str, center: list[float] | None = None, *,
                   base: str | None = None, rasters: tuple[str, ...] = (),
                   raster_bounds: dict[str, tuple[float, float, float, float]] | None = None) -> dict:
    """A MapLibre GL style (spec v8) drawing the layers from our combined tiles over the server's base maps,
    with labels in glyphs from `{base}/fonts/` (when `base` is given)."""
    style_layers: list[dict] = [{"id": "background", "type": "background", "paint": {"background-color": "#f4f1ea"}}]
    sources: dict = {}
    if base is not None:
        sources, raster_layers = _basemap_layers(base, rasters, raster_bounds)
        style_layers += raster_layers
    for layer in layers:
        if layer.id == HEATMAP:
            style_layers += heatmap_style_layers(SOURCE)
            continue
        sl = _style_layer(layer)
        if sl is not None:
            style_layers.append(sl)
    if base is not None:
        style_layers += [lbl for layer in layers if (lbl := _label_layer(layer)) is not None]
    doc: dict = {
        "version": 8,
        "name": "onemap",
        "sources": {**sources, SOURCE: {"type": "vector", "url": tilejson_url}},
        "layers": style_layers,
    }
    if base is not None:
        doc["glyphs"] = f"{base}/fonts/{{fontstack}}/{{range}}.pbf"
    if center:
        doc["center"] = center[:2]
        doc["zoom"] = center[2] if len(center) > 2 else 10
    return doc
