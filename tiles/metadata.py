"""Documents describing our tiles: OGC API - Tiles tileset lists and metadata, and TileJSON 3.0."""

from __future__ import annotations

from geoserver.access import Scope
from geoserver.catalog import Layer
from geoserver.extents import ExtentCache
from geoserver.vectortile import CLUSTER_COUNT
from tiles.plan import TilePlan
from tiles.tms import MAX_ZOOM, get_tms, tms_ids

MVT = "application/vnd.mapbox-vector-tile"
REL_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean",
          "datetime": "String", "date": "String"}
_DIMENSION = {"Point": 0, "LineString": 1, "Polygon": 2}


def tile_matrix_sets(base: str) -> dict:
    """The /tileMatrixSets list."""
    return {"tileMatrixSets": [
        {"id": t, "title": get_tms(t).title or t, "crs": get_tms(t).crs.srs,
         "links": [{"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets/{t}"}]}
        for t in tms_ids()]}


def _prefix(base: str, layer_id: str | None) -> str:
    return f"{base}/collections/{layer_id}/tiles" if layer_id else f"{base}/tiles"


def tilesets(base: str, title: str, layer_id: str | None) -> dict:
    """The tileset list of one collection (`layer_id`) or of the combined tiles."""
    prefix = _prefix(base, layer_id)
    return {"tilesets": [
        {"title": f"{title} ({t})", "dataType": "vector", "crs": get_tms(t).crs.srs,
         "tileMatrixSetURI": get_tms(t).uri or f"{base}/tileMatrixSets/{t}",
         "links": [{"rel": "self", "type": "application/json", "href": f"{prefix}/{t}"},
                   {"rel": REL_SCHEME, "type": "application/json", "href": f"{base}/tileMatrixSets/{t}"}]}
        for t in tms_ids()]}


def _fields(layer: Layer, plan: TilePlan) -> dict[str, str]:
    props = plan.plan(layer, layer.max_zoom if layer.max_zoom <= MAX_ZOOM else MAX_ZOOM).properties
    fields = {p: _TYPES[layer.prop(p).type] for p in props}
    if layer.geometry_type.endswith("Point"):  # every point layer is clustered at its first zooms
        fields[CLUSTER_COUNT] = "Number"
        fields.update({name: "Number" for name, _, _ in layer.cluster_counts})
    return fields


def tileset(base: str, title: str, tms_id: str, layers: list[Layer], plan: TilePlan, layer_id: str | None) -> dict:
    """OGC API - Tiles tileset metadata of one collection or of the combined tiles in one TMS."""
    prefix = _prefix(base, layer_id)
    tms = get_tms(tms_id)
    return {
        "title": title,
        "dataType": "vector",
        "crs": tms.crs.srs,
        "tileMatrixSetURI": tms.uri or f"{base}/tileMatrixSets/{tms_id}",
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{prefix}/{tms_id}"},
            {"rel": REL_SCHEME, "type": "application/json", "href": f"{base}/tileMatrixSets/{tms_id}"},
            {"rel": "item", "type": MVT, "templated": True,
             "href": f"{prefix}/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"},
            {"rel": "describedby", "type": "application/json", "title": "TileJSON",
             "href": f"{prefix}/{tms_id}/tilejson.json"},
        ],
        "layers": [{"id": lyr.id, "title": lyr.title, "dataType": "vector",
                    "geometryDimension": _DIMENSION[lyr.geometry_type.removeprefix("Multi")],
                    "minTileMatrix": str(lyr.min_zoom), "maxTileMatrix": str(min(lyr.max_zoom, MAX_ZOOM)),
                    "propertiesSchema": {"type": "object", "properties": {
                        k: {"type": v.lower() if v != "Number" else "number"}
                        for k, v in _fields(lyr, plan).items()}}}
                   for lyr in layers],
    }


def bounds_of(extents: ExtentCache, layers: list[tuple[Layer, Scope]]) -> list[float]:
    """The lon/lat bounds of what the scopes see of the layers (the whole world if nothing)."""
    boxes = [e.bbox for lyr, sc in layers if (e := extents.extent(lyr.id, sc)).bbox is not None]
    if not boxes:
        return [-180.0, -85.0511, 180.0, 85.0511]
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def tilejson(base: str, title: str, tms_id: str, layers: list[Layer], plan: TilePlan, bounds: list[float],
             layer_id: str | None) -> dict:
    """A TileJSON 3.0 document for one collection or the combined tiles."""
    prefix = _prefix(base, layer_id)
    minzoom = min((lyr.min_zoom for lyr in layers), default=0)
    maxzoom = min(max((lyr.max_zoom for lyr in layers), default=MAX_ZOOM), MAX_ZOOM)
    center_zoom = max(minzoom, min(12, maxzoom))
    return {
        "tilejson": "3.0.0",
        "name": title,
        "scheme": "xyz",
        "tiles": [f"{prefix}/{tms_id}/{{z}}/{{y}}/{{x}}"],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, center_zoom],
        "vector_layers": [{"id": lyr.id, "description": lyr.title, "minzoom": lyr.min_zoom,
                           "maxzoom": min(lyr.max_zoom, MAX_ZOOM), "fields": _fields(lyr, plan)}
                          for lyr in layers],
    }
