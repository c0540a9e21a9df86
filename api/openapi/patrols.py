"""OpenAPI entries of the patrol reads: OGC API - Moving Features (api/routers/moving_features.py) with MF-JSON
schemas written from OGC 19-045r3 and the Moving Features Part 1 schemas, and the statistics
(api/routers/patrol_stats.py); who reaches them."""

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
    counts = {name: {"type": "integer", "minimum": 0} for name in (
        "workers", "worker_days", "online_now", "online", "patrolled", "not_patrolled", "patrols", "duration_s",
        "mileage_met", "duration_met", "met", "not_met", "stops", "dwell_s", "cells_visited", "cells")}
    rates = {name: {"type": "number", "minimum": 0, "maximum": 1, "nullable": True} for name in (
        "online_now_rate", "online_rate", "patrol_rate", "met_rate", "coverage")}
    stop = {"type": "object", "required": ["start", "end", "dwell_s", "lon", "lat"], "properties": {
        "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
        "dwell_s": INTEGER, "lon": NUMBER, "lat": NUMBER}}
    figures = {"type": "object", "required": [*counts, *rates, "distance_m"], "properties": {
        **counts, **rates, "distance_m": {"type": "number", "minimum": 0},
        "stop_list": {"type": "array", "items": stop, "description": "One worker-day's stops (worker,day groups)."},
        "worker": {"type": "string", "nullable": True}, "grid_code": {"type": "string", "nullable": True},
        "township_code": {"type": "string", "nullable": True}, "day": {"type": "string", "format": "date"}}}
    stats = {"type": "object", "required": ["from", "to", "group_by", "targets", "totals", "groups"],
             "title": "Patrol statistics", "properties": {
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "group_by": {"type": "array", "items": STRING}, "targets": {"type": "object"},
        "as_of": {"type": "string", "format": "date-time"}, "totals": ref("PatrolFigures"),
        "groups": {"type": "array", "items": ref("PatrolFigures")}}}
    return {"MovingPoint": moving_point, "TemporalGeometrySequence": sequence, "TemporalProperty": prop,
            "MovingFeature": feature, "PatrolFigures": figures, "PatrolStats": stats}


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
    out = {("GET", BASE): sequence, ("GET", "/stats/patrols"): Operation(
        {"200": response("The figures of every worker-day in your scope, grouped.", {JSON: ref("PatrolStats")})},
        (query("day", {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}(/\d{4}-\d{2}-\d{2})?$"},
               "A local date (UTC+8) or a range a/b of at most 31 days; today when absent."),
         query("group_by", {"type": "array", "items": {"type": "string", "enum": ["worker", "grid_code",
                                                                                  "township_code", "day"]},
                            "uniqueItems": True}, "Groups (default worker,day).", style="form", explode=False)),
        needs=_needs_patrols)}
    for kind in ("distance", "velocity", "acceleration"):
        out[("GET", f"{BASE}/{{tGeometryId}}/{kind}")] = Operation(
            {"200": response(f"The time-to-{kind} curve of the temporal geometry.", {JSON: ref("TemporalProperty")})},
            (_leaf(), *_CURVE_PARAMETERS), domains={"tGeometryId": lambda r: {"type": "string", "enum": ["1"]}},
            needs=_needs_patrols)
    return out
