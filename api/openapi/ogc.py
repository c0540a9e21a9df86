"""The OGC layer over FastAPI's route table: what the signatures cannot say.

FastAPI knows our paths, methods, path parameters and docstrings. It cannot know the query parameters
the OGC routes read from the request themselves (bbox, filter, WMTS KVP, ...), the media types they send
(GeoJSON, schema+json, MVT, PNG/JPEG/WebP, glTF, XML, HTML), or which collections, sources and actions a
caller can reach. This module adds that, keyed by (method, path) of routes that exist: an entry whose
route is gone is reported by `stale_entries` (a test keeps the table true).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.openapi.schemas import BINARY, STRING, Schema, layer_schema_names, property_schema, ref
from geoserver.catalog import Layer
from geoserver.crs import SUPPORTED
from geoserver.features import MAX_LIMIT
from geoserver.idempotency import MAX_KEY_LENGTH
from tiles.tms import MAX_ZOOM, tms_ids

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
JSONLD = "application/ld+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
IMAGES = ("image/png", "image/jpeg", "image/webp")
MVT = "application/vnd.mapbox-vector-tile"
GLB = "model/gltf-binary"
XML = "application/xml"
PROBLEM = "application/problem+json"
# The largest column (or row) index of any matrix we serve: CGCS2000Quad is two tiles wide at zoom 0.
MAX_INDEX = 2 ** (MAX_ZOOM + 1) - 1


@dataclass(frozen=True)
class Reach:
    """What one caller can reach: readable collections, their write actions, drawable sources."""

    collections: tuple[Layer, ...]
    writes: dict[str, frozenset[str]] = field(default_factory=dict)
    raster_sources: tuple[str, ...] = ()
    outline_sources: tuple[str, ...] = ()

    @property
    def collection_ids(self) -> list[str]:
        """Ids of the readable collections, in catalog order."""
        return [layer.id for layer in self.collections]

    def key(self) -> tuple:
        """A hashable summary (documents are cached per reach)."""
        return (tuple(self.collection_ids), tuple(sorted((k, tuple(sorted(v))) for k, v in self.writes.items())),
                self.raster_sources, self.outline_sources)


# -- building blocks --------------------------------------------------------------------------------------
def content(media: dict[str, Schema]) -> dict[str, Any]:
    """A `content` map of media types to schemas."""
    return {m: {"schema": s} for m, s in media.items()}


def response(description: str, media: dict[str, Schema] | None = None, **headers: Schema) -> dict[str, Any]:
    """A response object with optional content and headers."""
    out: dict[str, Any] = {"description": description}
    if media:
        out["content"] = content(media)
    if headers:
        out["headers"] = {name: {"schema": s} for name, s in headers.items()}
    return out


def problem(description: str) -> dict[str, Any]:
    """An error response: always RFC 9457 problem+json (api/errors.py builds every error)."""
    return response(description, {PROBLEM: ref("Problem")})


def query(name: str, schema: Schema, description: str = "", **extra: Any) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema,
            **({"description": description} if description else {}), **extra}


def header(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    """A request header parameter."""
    return {"name": name, "in": "header", "required": False, "schema": schema,
            **({"description": description} if description else {})}


def _enum(values) -> Schema:
    return {"type": "string", "enum": list(values)}


def _f(*formats: str) -> dict[str, Any]:
    return query("f", _enum(formats), "The output format (else the Accept header decides).")


def _csv(name: str, items: Schema, description: str, **bounds: int) -> dict[str, Any]:
    return query(name, {"type": "array", "items": items, **bounds}, description, style="form", explode=False)


ETAG = {"type": "string", "description": "Entity tag of the representation."}
IF_NONE_MATCH = header("If-None-Match", STRING, "ETags the client holds; a match answers 304 without a body.")
NOT_MODIFIED = response("Not modified: the client's copy (If-None-Match) is current.")
CRS = _enum(SUPPORTED)
CONTENT_CRS = header("Content-Crs", _enum(f"<{c}>" for c in SUPPORTED),
                     "The CRS of the geometry in the body (CRS84 when absent).")
IF_MATCH = header("If-Match", STRING, "Write only if the feature still has this ETag (else 412).")
IMAGE = {m: BINARY for m in IMAGES}


# -- OGC API Features, per collection --------------------------------------------------------------------
FEATURE_ROUTES = frozenset({
    ("GET", "/collections/{collection_id}"), ("GET", "/collections/{collection_id}/queryables"),
    ("GET", "/collections/{collection_id}/items"), ("POST", "/collections/{collection_id}/items"),
    ("GET", "/collections/{collection_id}/items/{fid}"), ("PUT", "/collections/{collection_id}/items/{fid}"),
    ("PATCH", "/collections/{collection_id}/items/{fid}"), ("DELETE", "/collections/{collection_id}/items/{fid}"),
})


def _items_parameters(layer: Layer) -> list[dict[str, Any]]:
    names = list(layer.property_names)
    sortable = ["id", *names]
    params = [
        query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
              "How many features at most."),
        query("offset", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0},
              "How many matching features to skip."),
        _csv("bbox", {"type": "number"}, "minx,miny,maxx,maxy (or 6 numbers with heights) in bbox-crs.",
             minItems=4, maxItems=6),
        query("bbox-crs", CRS, "The CRS of bbox (CRS84 when absent)."),
        query("crs", CRS, "The CRS of the geometries in the response (CRS84 when absent)."),
        query("datetime", STRING, f"An instant or interval (a/b, ../b, a/..) on {layer.time_field}."
              if layer.time_field else "An instant or interval (a/b, ../b, a/..)."),
        query("filter", STRING, "A CQL2 filter (text, or JSON with filter-lang=cql2-json)."),
        query("filter-lang", _enum(("cql2-text", "cql2-json")), "The language of filter."),
        query("filter-crs", CRS, "The CRS of the geometries in filter."),
        _csv("properties", _enum(names), "Only these properties in each feature."),
        _csv("sortby", {"type": "string", "pattern": f"^[+-]?({'|'.join(sortable)})$"},
             "Sort keys (id or properties); a leading - sorts descending."),
        query("skipGeometry", {"type": "boolean"}, "Leave the geometry out (null)."),
        _f("json", "html"),
    ]
    reserved = {p["name"] for p in params}
    params += [query(p.name, property_schema(p, nullable=False), f"Only features whose {p.name} equals this.")
               for p in layer.properties if p.name not in reserved]
    return params


def _feature_ops(layer: Layer, reach: Reach, docs: dict[tuple[str, str], dict]) -> dict[str, dict[str, Any]]:
    """The Features paths of one collection, with the operations this caller may use."""
    names = layer_schema_names(layer)
    lid = layer.id
    writes = reach.writes.get(lid, frozenset())
    fid = {"name": "featureId", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0},
           "description": "The feature's id."}
    feature_headers = {"ETag": ETAG, "Content-Crs": STRING}

    def op(method: str, path: str, op_id: str, **fields: Any) -> dict[str, Any]:
        generic = docs.get((method, path), {})
        return {"tags": [lid], "summary": generic.get("summary", op_id), "operationId": f"{lid}.{op_id}",
                **({"description": generic["description"]} if "description" in generic else {}), **fields}

    collection = "/collections/{collection_id}"
    items = f"{collection}/items"
    item = f"{items}/{{fid}}"
    paths: dict[str, dict[str, Any]] = {
        f"/collections/{lid}": {"get": op("GET", collection, "describeCollection", parameters=[
            _f("json", "html", "jsonld")], responses={"200": response(
                "The collection.", {JSON: ref("Collection"), JSONLD: {"type": "object"}, HTML: STRING})})},
        f"/collections/{lid}/queryables": {"get": op("GET", f"{collection}/queryables", "getQueryables",
                                                      parameters=[_f("json", "html")], responses={"200": response(
                "The properties a filter may name.", {"application/schema+json": ref("Queryables"), HTML: STRING})})},
        f"/collections/{lid}/items": {"get": op("GET", items, "getFeatures", parameters=_items_parameters(layer),
                                                responses={"200": response(
            "A page of features.", {GEOJSON: ref(names["FeatureCollection"]), HTML: STRING},
            **{"Content-Crs": STRING})})},
        f"/collections/{lid}/items/{{featureId}}": {"get": op("GET", item, "getFeature", parameters=[
            fid, query("crs", CRS, "The CRS of the geometry in the response."),
            # patrols are moving features: f=mfjson answers MF-JSON (api/routers/moving_features.py)
            _f("json", "html", *(("mfjson",) if lid == "patrols" else ()))],
            responses={"200": response("The feature.", {GEOJSON: ref(names["Feature"]), HTML: STRING},
                                       **feature_headers)})},
    }
    body = {"required": True, "content": content({GEOJSON: ref(names["FeatureInput"])})}
    written = response("The feature as stored.", {GEOJSON: ref(names["Feature"])}, ETag=ETAG, Location=STRING)
    refused = problem("The feature lies outside the townships the caller may write.")
    owned = problem("A property only the layer's workflow sets (layers/ write rules) was changed.")
    changed = problem("The feature changed since (If-Match).")
    if "create" in writes:
        key = header("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
                     "Retries with the same key and body get the first answer again.")
        paths[f"/collections/{lid}/items"]["post"] = op(
            "POST", items, "createFeature", parameters=[CONTENT_CRS, key], requestBody=body, responses={
                "201": written, "403": refused,
                "409": problem("A property only the layer's workflow sets was given, or the key's first request "
                               "is still running."),
                "422": problem("The Idempotency-Key was used for another request, or the feature cannot be "
                               "placed (an event outside the county).")})
    one = paths[f"/collections/{lid}/items/{{featureId}}"]
    if "update" in writes:
        patch_body = {"required": True, "content": content({"application/merge-patch+json": ref(names["FeaturePatch"]),
                                                            GEOJSON: ref(names["FeaturePatch"])})}
        answers = {"200": written, "403": refused, "409": owned, "412": changed}
        one["put"] = op("PUT", item, "replaceFeature", parameters=[fid, CONTENT_CRS, IF_MATCH], requestBody=body,
                        responses=dict(answers))
        one["patch"] = op("PATCH", item, "updateFeature", parameters=[fid, CONTENT_CRS, IF_MATCH],
                          requestBody=patch_body, responses=dict(answers))
    if "delete" in writes:
        one["delete"] = op("DELETE", item, "deleteFeature", parameters=[fid, IF_MATCH], responses={
            "204": response("Deleted."), "403": refused, "412": changed})
    return paths


def feature_paths(reach: Reach, generic: dict[tuple[str, str], dict]) -> dict[str, dict[str, Any]]:
    """The Features paths of every collection the caller may read (ids not readable are not named)."""
    out: dict[str, dict[str, Any]] = {}
    for layer in reach.collections:
        out.update(_feature_ops(layer, reach, generic))
    return out


def feature_tags(reach: Reach) -> list[dict[str, str]]:
    """One tag per readable collection, described by its layer."""
    return [{"name": layer.id, "description": layer.description or layer.title} for layer in reach.collections]


# -- every other OGC route: parameters, path parameter domains, media types ------------------------------
def _z() -> Schema:
    return {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM}


def _index() -> Schema:
    return {"type": "integer", "minimum": 0, "maximum": MAX_INDEX}


# Domains of path parameters by name, for the operations in OPERATIONS (an empty enum drops the operation).
PATH_DOMAINS: dict[str, Callable[[Reach], Schema]] = {
    "collection": lambda r: _enum(r.collection_ids),
    "tms": lambda r: _enum(tms_ids()),
    "z": lambda r: _z(), "row": lambda r: _index(), "col": lambda r: _index(),
    "x": lambda r: _index(), "y": lambda r: _index(),
    "ext": lambda r: _enum(("png", "jpg", "jpeg", "webp")),
    "style": lambda r: _enum(("default",)),
    "tile_path": lambda r: {"type": "string", "pattern": "^0(-[0-3])*$"},
}
RASTERS = {"source": lambda r: _enum(r.raster_sources)}
DRAWABLE = {"source": lambda r: _enum(r.raster_sources + r.outline_sources),
            "layer": lambda r: _enum(r.raster_sources + r.outline_sources)}

WMTS_KVP = [
    query("SERVICE", _enum(("WMTS",))), query("REQUEST", _enum(("GetCapabilities", "GetTile"))),
    query("VERSION", _enum(("1.0.0",))), query("LAYER", STRING), query("STYLE", STRING),
    query("FORMAT", _enum(IMAGES)), query("TILEMATRIXSET", STRING), query("TILEMATRIX", STRING),
    query("TILEROW", {"type": "integer", "minimum": 0}), query("TILECOL", {"type": "integer", "minimum": 0}),
]


@dataclass(frozen=True)
class Operation:
    """What the OGC layer adds to one FastAPI operation."""

    responses: dict[str, dict[str, Any]]
    parameters: tuple[dict[str, Any], ...] = ()
    domains: dict[str, Callable[[Reach], Schema]] = field(default_factory=dict)
    needs: Callable[[Reach], bool] | None = None  # False: the caller cannot reach it, it is left out


def _ok(description: str, media: dict[str, Schema], **headers: Schema) -> dict[str, dict[str, Any]]:
    return {"200": response(description, media, **headers)}


_TILE = {**_ok("The tile.", {MVT: BINARY}, ETag=ETAG), "204": response("No feature in this tile."),
         "304": NOT_MODIFIED}
_MAP_TILE = _ok("The image tile.", IMAGE)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/"): Operation(_ok("The landing page.", {JSON: ref("LandingPage"), JSONLD: {"type": "object"},
                                                       HTML: STRING}), (_f("json", "html", "jsonld"),)),
    ("GET", "/conformance"): Operation(_ok("The conformance classes.", {JSON: ref("Conformance"), HTML: STRING}),
                                       (_f("json", "html"),)),
    ("GET", "/collections"): Operation(_ok("The collections the caller may read.", {
        JSON: ref("Collections"), JSONLD: {"type": "object"}, HTML: STRING}), (_f("json", "html", "jsonld"),)),
    ("GET", "/openapi"): Operation(_ok("This document (HTML: Swagger UI).", {OPENAPI: {"type": "object"},
                                                                               HTML: STRING}), (_f("json", "html"),)),
    ("GET", "/healthz"): Operation(_ok("The store answers.", {JSON: ref("Health")})),
    ("POST", "/auth/token"): Operation({**_ok("A bearer token.", {JSON: ref("Token")}),
                                        "401": problem("Wrong username or password.")}),
    ("GET", "/tileMatrixSets"): Operation(_ok("The tile matrix sets.", {JSON: ref("TileMatrixSets")})),
    ("GET", "/tileMatrixSets/{tms}"): Operation(_ok("One tile matrix set.", {JSON: ref("TileMatrixSet")})),
    ("GET", "/collections/{collection}/tiles"): Operation(_ok("The collection's tilesets.", {JSON: ref("TileSets")})),
    ("GET", "/collections/{collection}/tiles/{tms}"): Operation(_ok("Tileset metadata.", {JSON: ref("TileSet")})),
    ("GET", "/collections/{collection}/tiles/{tms}/tilejson.json"): Operation(
        _ok("TileJSON of the collection.", {JSON: ref("TileJSON")})),
    ("GET", "/collections/{collection}/tiles/{tms}/{z}/{row}/{col}"): Operation(_TILE, (
        IF_NONE_MATCH,
        query("filter", STRING, "Only the features matching this CQL2 filter (clusters count only them)."),
        query("filter-lang", _enum(("cql2-text", "cql2-json")), "The language of filter."),
        query("filter-crs", CRS, "The CRS of the geometries in filter."),
        query("datetime", STRING, "Only the features whose time meets this instant or interval (a/b, ../b, a/..)."))),
    ("GET", "/tiles"): Operation(_ok("The combined tilesets.", {JSON: ref("TileSets")})),
    ("GET", "/tiles/{tms}"): Operation(_ok("Combined tileset metadata.", {JSON: ref("TileSet")})),
    ("GET", "/tiles/{tms}/tilejson.json"): Operation(_ok("TileJSON of every readable layer.", {JSON: ref("TileJSON")})),
    ("GET", "/tiles/{tms}/{z}/{row}/{col}"): Operation(_TILE, (IF_NONE_MATCH,)),
    ("GET", "/styles/onemap.json"): Operation(_ok("The MapLibre style.", {JSON: ref("Style")})),
    ("GET", "/fonts/{fontstack}/{glyph_range}.pbf"): Operation(
        {**_ok("256 label glyphs as signed distance fields.", {"application/x-protobuf": BINARY}),
         "400": problem("A range other than start-end (start a multiple of 256, end = start+255)."),
         "404": problem("The server has no label font.")}),
    ("GET", "/search"): Operation(
        {**_ok("What matches, within the caller's scope.", {JSON: {"type": "object"}}),
         "400": problem("q missing, blank or too long; limit not 1-50; an unknown parameter.")},
        (query("q", {"type": "string", "minLength": 1, "maxLength": 100}, "A name or code.", required=True),
         query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "Hits per kind (default 10)."))),
    ("GET", "/3dtiles/buildings/tileset.json"): Operation(
        {**_ok("The caller's white-model tileset.", {JSON: ref("Tileset3D")}, ETag=ETAG), "304": NOT_MODIFIED},
        (IF_NONE_MATCH,), needs=lambda r: "buildings" in r.collection_ids),
    ("GET", "/3dtiles/buildings/{tile_path}.glb"): Operation(
        {**_ok("One content tile.", {GLB: BINARY}, ETag=ETAG), "304": NOT_MODIFIED}, (IF_NONE_MATCH,),
        needs=lambda r: "buildings" in r.collection_ids),
    ("GET", "/collections/{source}/map/tiles"): Operation(_ok("The source's map tilesets.", {JSON: ref("TileSets")}),
                                                          domains=RASTERS),
    ("GET", "/collections/{source}/map/tiles/{tms}"): Operation(_ok("Map tileset metadata.", {JSON: ref("TileSet")}),
                                                                domains=RASTERS),
    ("GET", "/collections/{source}/map/tiles/{tms}/{z}/{row}/{col}"): Operation(_MAP_TILE, domains=DRAWABLE),
    ("GET", "/basemaps/{source}/{z}/{x}/{y}.{ext}"): Operation(_MAP_TILE, domains=DRAWABLE),
    ("GET", "/wmts"): Operation(_ok("Capabilities (GetCapabilities) or a tile (GetTile).", {XML: STRING, **IMAGE}),
                                tuple(WMTS_KVP)),
    ("GET", "/wmts/1.0.0/WMTSCapabilities.xml"): Operation(_ok("WMTS capabilities.", {XML: STRING})),
    ("GET", "/wmts/1.0.0/{layer}/{style}/{tms}/{z}/{row}/{col}.{ext}"): Operation(_MAP_TILE, domains=DRAWABLE),
}
