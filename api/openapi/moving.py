"""OpenAPI entries of OGC API - Moving Features for patrols (api/routers/moving_features.py): parameters,
MF-JSON schemas (written from OGC 19-045r3 and the Moving Features Part 1 schemas) and who reaches them."""

from __future__ import annotations

from typing import Any

from api.openapi.ogc import JSON, Operation, Reach, query, response
from api.openapi.schemas import INTEGER, NUMBER, STRING, Schema, ref
from geoserver.features import MAX_LIMIT
from layers.patrol_replay import MAX_LEAF

BASE = "/collections/patrols/items/{featureId}/tgsequence"
_DATETIMES = {"type": "array", "items": {"type": "string", "format": "date-time"}, "uniqueItems": True}
_NAMED = {"type": "object", "required": ["type", "properties"], "properties": {
    "type": {"type": "string", "enum": ["Name"]},
    "properties": {"type": "object", "required": ["name"], "properties": {"name": STRING}}}}


def moving_schemas() -> dict[str, Schema]:
    """MovingPoint, TemporalGeometrySequence, TemporalProperty and the MF-JSON MovingFeature."""
    moving_point = {"type": "object", "required": ["id", "type", "datetimes", "coordinates", "interpolation"],
                    "title": "MF-JSON MovingPoint (a TemporalPrimitiveGeometry)", "properties": {
        "id": STRING, "type": {"type": "string", "enum": ["MovingPoint"]}, "datetimes": _DATETIMES,
        "coordinates": {"type": "array", "items": {"type": "array", "items": NUMBER, "minItems": 2,
                                                   "maxItems": 3}},
        "interpolation": {"type": "string", "enum": ["Discrete", "Step", "Linear"]},
        "crs": _NAMED, "trs": _NAMED}}
    sequence = {"type": "object", "required": ["type", "geometrySequence", "numberMatched", "numberReturned"],
                "title": "MF-JSON TemporalGeometrySequence", "properties": {
        "type": {"type": "string", "enum": ["TemporalGeometrySequence"]},
        "geometrySequence": {"type": "array", "items": ref("MovingPoint")},
        "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string", "format": "date-time"}, "links": {"type": "array", "items": ref("Link")}}}
    prop = {"type": "object", "required": ["name", "type", "valueSequence"], "title": "MF-JSON TemporalProperty",
            "properties": {
        "name": {"type": "string", "enum": ["distance", "velocity", "acceleration"]},
        "type": {"type": "string", "enum": ["TReal"]},
        "form": {"type": "string", "description": "UN/CEFACT unit code: MTR (m), MTS (m/s), MSK (m/s²)."},
        "valueSequence": {"type": "array", "items": {
            "type": "object", "required": ["datetimes", "values", "interpolation"], "properties": {
                "datetimes": _DATETIMES, "values": {"type": "array", "items": NUMBER},
                "interpolation": {"type": "string", "enum": ["Discrete", "Linear"]}}}}}}
    feature = {"type": "object", "required": ["type", "id", "properties"],
               "title": "MF-JSON MovingFeature: the patrol with its temporal geometry", "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "id": INTEGER, "properties": {"type": "object"},
        "time": {"type": "array", "items": {"type": "string", "nullable": True}, "minItems": 2, "maxItems": 2},
        "bbox": {"type": "array", "items": NUMBER, "minItems": 4}, "temporalGeometry": ref("MovingPoint"),
        "crs": _NAMED, "trs": _NAMED, "links": {"type": "array", "items": ref("Link")}}}
    return {"MovingPoint": moving_point, "TemporalGeometrySequence": sequence, "TemporalProperty": prop,
            "MovingFeature": feature}


def _leaf() -> dict[str, Any]:
    return query("leaf", {"type": "array", "items": {"type": "string", "format": "date-time"}, "minItems": 1,
                          "maxItems": MAX_LEAF, "uniqueItems": True},
                 "Strictly increasing instants: positions (or values) there, interpolated; Discrete.",
                 style="form", explode=False)


def _clip(name: str) -> dict[str, Any]:
    return query(name, {"type": "boolean"}, "With a bounded datetime a/b: cut at interpolated positions at a and b.")


_F = query("f", {"type": "string", "enum": ["json"]}, "The output format.")
_DATETIME = query("datetime", STRING, "An instant or interval (a/b, ../b, a/..) on the fixes' times.")
_CURVE_PARAMETERS = (_DATETIME, _clip("subTemporalValue"), _F)


def _needs_patrols(reach: Reach) -> bool:
    return "patrols" in reach.collection_ids


def operations() -> dict[tuple[str, str], Operation]:
    """The Moving Features routes, for callers who may read patrols."""
    sequence = Operation(
        {"200": response("The patrol's temporal geometry (one MovingPoint of every fix in time order).",
                         {JSON: ref("TemporalGeometrySequence")})},
        (query("bbox", {"type": "array", "items": NUMBER, "minItems": 4, "maxItems": 4},
               "minLon,minLat,maxLon,maxLat (CRS84): the track only if it meets the box.", style="form",
               explode=False), _DATETIME,
         query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
               "How many temporal geometries at most (a patrol has one)."),
         _leaf(), _clip("subTrajectory"), _F), needs=_needs_patrols)
    out = {("GET", BASE): sequence}
    for kind in ("distance", "velocity", "acceleration"):
        out[("GET", f"{BASE}/{{tGeometryId}}/{kind}")] = Operation(
            {"200": response(f"The time-to-{kind} curve of the temporal geometry.", {JSON: ref("TemporalProperty")})},
            (_leaf(), *_CURVE_PARAMETERS), domains={"tGeometryId": lambda r: {"type": "string", "enum": ["1"]}},
            needs=_needs_patrols)
    return out
