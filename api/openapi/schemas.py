"""Component schemas of the OpenAPI document (OpenAPI 3.0 dialect), written by us: no remote `$ref`.

They describe what the routes really send: problem details, OGC API landing/conformance/collections,
GeoJSON features typed per layer, queryables, OGC tile metadata, TileJSON, the MapLibre style and the
3D Tiles tileset. Open where the standards are open (extra members allowed), exact where clients rely on it.
"""

from __future__ import annotations

from typing import Any

from geoserver.catalog import Layer, Property
from geoserver.features import MAX_LIMIT

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A local reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    return out


STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
BINARY: Schema = {"type": "string", "format": "binary"}

PROBLEM = _object({
    "type": {"type": "string", "description": "A URI naming the kind of problem (`about:blank` here)."},
    "title": STRING, "status": {"type": "integer", "minimum": 400, "maximum": 599},
    "detail": {"type": "string", "description": "What went wrong, for a person."},
    "parameter": {"type": "string", "description": "The query parameter, header or body member at fault."},
}, ("type", "title", "status", "detail"), description="RFC 9457 problem details.")

LINK = _object({
    "href": STRING, "rel": STRING, "type": STRING, "title": STRING, "hreflang": STRING,
    "templated": {"type": "boolean"},
}, ("href",))

LINKS = _array(ref("Link"))

LANDING_PAGE = _object({"title": STRING, "description": STRING, "links": LINKS}, ("links",))

CONFORMANCE = _object({"conformsTo": _array(STRING)}, ("conformsTo",))

_EXTENT = _object({
    "spatial": _object({"bbox": _array(_array(NUMBER, minItems=4, maxItems=6), minItems=1), "crs": STRING}),
    "temporal": _object({"interval": _array(_array({"type": "string", "nullable": True}, minItems=2,
                                                   maxItems=2)), "trs": STRING}),
})

COLLECTION = _object({
    "id": STRING, "title": STRING, "description": STRING, "keywords": _array(STRING), "links": LINKS,
    "extent": _EXTENT, "itemType": STRING, "crs": _array(STRING), "storageCrs": STRING,
}, ("id", "links"))

COLLECTIONS = _object({"links": LINKS, "collections": _array(ref("Collection"))}, ("links", "collections"))

QUERYABLES = _object({
    "type": {"type": "string", "enum": ["object"]}, "title": STRING, "properties": {"type": "object"},
    "$schema": STRING, "$id": STRING,
}, ("type", "properties"), description="A JSON Schema of the properties a filter may name.")

TOKEN = _object({
    "access_token": STRING, "token_type": {"type": "string", "enum": ["bearer"]},
    "expires_in": {"type": "integer", "minimum": 1, "description": "Lifetime in seconds."},
}, ("access_token", "token_type", "expires_in"))

HEALTH = _object({"status": {"type": "string", "enum": ["ok"]}}, ("status",),
                 description="The store's own report (kind, layers, ...) besides the status.")

_TMS_LINK_LIST = _array(_object({"id": STRING, "title": STRING, "crs": STRING, "links": LINKS},
                                ("id", "links")))
TILE_MATRIX_SETS = _object({"tileMatrixSets": _TMS_LINK_LIST}, ("tileMatrixSets",))

TILE_MATRIX_SET = _object({
    "id": STRING, "title": STRING, "uri": STRING, "crs": STRING, "orderedAxes": _array(STRING),
    "tileMatrices": _array(_object({
        "id": STRING, "scaleDenominator": NUMBER, "cellSize": NUMBER, "cornerOfOrigin": STRING,
        "pointOfOrigin": _array(NUMBER, minItems=2, maxItems=2), "tileWidth": INTEGER, "tileHeight": INTEGER,
        "matrixWidth": INTEGER, "matrixHeight": INTEGER,
    }, ("id", "scaleDenominator", "pointOfOrigin", "tileWidth", "tileHeight", "matrixWidth", "matrixHeight"))),
}, ("crs", "tileMatrices"), description="OGC Two Dimensional Tile Matrix Set 2.0 (JSON).")

TILE_SET = _object({
    "title": STRING, "dataType": {"type": "string", "enum": ["vector", "map"]}, "crs": STRING,
    "tileMatrixSetId": STRING, "tileMatrixSetURI": STRING, "links": LINKS,
    "layers": _array(_object({"id": STRING, "title": STRING, "dataType": STRING}, ("id",))),
    "boundingBox": _object({"lowerLeft": _array(NUMBER), "upperRight": _array(NUMBER), "crs": STRING}),
}, ("dataType", "links"), description="OGC API - Tiles tileset metadata.")

TILE_SETS = _object({"tilesets": _array(ref("TileSet")), "links": LINKS}, ("tilesets",))

TILEJSON = _object({
    "tilejson": {"type": "string", "enum": ["3.0.0"]}, "name": STRING, "scheme": STRING,
    "tiles": _array(STRING, minItems=1), "minzoom": INTEGER, "maxzoom": INTEGER,
    "bounds": _array(NUMBER, minItems=4, maxItems=4), "center": _array(NUMBER, minItems=2, maxItems=3),
    "vector_layers": _array(_object({"id": STRING, "fields": {"type": "object"}}, ("id", "fields"))),
}, ("tilejson", "tiles"), description="TileJSON 3.0.0.")

STYLE = _object({
    "version": {"type": "integer", "enum": [8]}, "name": STRING, "sources": {"type": "object"},
    "layers": _array({"type": "object"}), "center": _array(NUMBER), "zoom": NUMBER,
}, ("version", "sources", "layers"), description="A MapLibre GL style.")

TILESET_3D = _object({
    "asset": _object({"version": STRING}, ("version",)), "geometricError": NUMBER,
    "root": _object({"boundingVolume": {"type": "object"}, "geometricError": NUMBER}, ("boundingVolume",)),
}, ("asset", "geometricError", "root"), description="OGC 3D Tiles 1.1 tileset.")


def common_schemas() -> dict[str, Schema]:
    """The schemas every document carries."""
    return {
        "Problem": PROBLEM, "Link": LINK, "LandingPage": LANDING_PAGE, "Conformance": CONFORMANCE,
        "Collection": COLLECTION, "Collections": COLLECTIONS, "Queryables": QUERYABLES, "Token": TOKEN,
        "Health": HEALTH, "TileMatrixSets": TILE_MATRIX_SETS, "TileMatrixSet": TILE_MATRIX_SET,
        "TileSet": TILE_SET, "TileSets": TILE_SETS, "TileJSON": TILEJSON, "Style": STYLE,
        "Tileset3D": TILESET_3D,
    }


# -- GeoJSON, typed per layer -----------------------------------------------------------------------------
_POSITION = _array(NUMBER, minItems=2, maxItems=3)
_RING = _array(_POSITION, minItems=4)
_COORDINATES = {
    "Point": _POSITION, "MultiPoint": _array(_POSITION), "LineString": _array(_POSITION, minItems=2),
    "MultiLineString": _array(_array(_POSITION, minItems=2)), "Polygon": _array(_RING, minItems=1),
    "MultiPolygon": _array(_array(_RING, minItems=1)),
}


def geometry(kind: str, nullable: bool = False) -> Schema:
    """A GeoJSON geometry of one type (inline: OpenAPI 3.0 cannot make a `$ref` nullable)."""
    out = _object({"type": {"type": "string", "enum": [kind]}, "coordinates": _COORDINATES[kind]},
                  ("type", "coordinates"))
    if nullable:
        out["nullable"] = True
    return out


def property_schema(prop: Property, nullable: bool = True) -> Schema:
    """The JSON Schema of one declared property, as GeoJSON carries it."""
    out: Schema = {
        "string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
        "boolean": {"type": "boolean"}, "datetime": {"type": "string", "format": "date-time"},
        "date": {"type": "string", "format": "date"},
    }[prop.type]
    if prop.title:
        out["title"] = prop.title
    if prop.enum:
        out["enum"] = list(prop.enum) + ([None] if nullable else [])
    if nullable:
        out["nullable"] = True
    return out


def _names(layer: Layer, kind: str) -> str:
    return f"{layer.id}.{kind}"


def layer_schema_names(layer: Layer) -> dict[str, str]:
    """Component names of one layer's schemas: Feature, FeatureCollection, FeatureInput, FeaturePatch."""
    return {k: _names(layer, k) for k in ("Feature", "FeatureCollection", "FeatureInput", "FeaturePatch")}


def layer_schemas(layer: Layer) -> dict[str, Schema]:
    """A layer's features as served (every property nullable) and as written (required ones required)."""
    served = {p.name: property_schema(p) for p in layer.properties}
    written = {p.name: property_schema(p, nullable=not p.required) for p in layer.properties}
    feature = _object({
        "type": {"type": "string", "enum": ["Feature"]}, "id": INTEGER,
        "geometry": geometry(layer.geometry_type, nullable=True),
        "properties": _object(served), "links": LINKS,
    }, ("type", "id", "geometry", "properties"), title=f"{layer.title}: one feature")
    collection = _object({
        "type": {"type": "string", "enum": ["FeatureCollection"]}, "features": _array(ref(_names(layer, "Feature"))),
        "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0,
                                                                                 "maximum": MAX_LIMIT},
        "timeStamp": {"type": "string", "format": "date-time"}, "links": LINKS,
    }, ("type", "features", "numberReturned", "links"), title=f"{layer.title}: a page of features")
    required = tuple(p.name for p in layer.properties if p.required)
    feature_input = _object({
        "type": {"type": "string", "enum": ["Feature"]}, "geometry": geometry(layer.geometry_type),
        "properties": _object(written, required, additionalProperties=False),
    }, ("type", "geometry", "properties"), title=f"{layer.title}: a new or replacing feature")
    patch = _object({
        "type": {"type": "string", "enum": ["Feature"]}, "geometry": geometry(layer.geometry_type),
        "properties": _object(served, additionalProperties=False),
    }, title=f"{layer.title}: the members to change (JSON merge patch of a feature)")
    return {_names(layer, "Feature"): feature, _names(layer, "FeatureCollection"): collection,
            _names(layer, "FeatureInput"): feature_input, _names(layer, "FeaturePatch"): patch}
