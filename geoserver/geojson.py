"""Features to and from GeoJSON objects, in any supported output CRS."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shapely.geometry import mapping, shape

from geoserver.catalog import Layer
from geoserver.crs import CRS84, GEOMETRY_ERRORS, from_storage, to_storage
from geoserver.errors import BadInput
from geoserver.features import Feature


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_geojson(feature: Feature, crs: str = CRS84) -> dict[str, Any]:
    """A GeoJSON Feature (`id` is the integer feature id), geometry in `crs`."""
    geometry = None
    if feature.geometry is not None:
        geometry = mapping(from_storage(feature.geometry, crs))
    return {"type": "Feature", "id": feature.id, "geometry": geometry,
            "properties": {k: _json_value(v) for k, v in feature.properties.items()}}


def from_geojson(layer: Layer, body: Any, crs: str = CRS84, *, partial: bool = False) -> Feature:
    """A Feature from a GeoJSON Feature body (geometry in `crs`); BadInput naming what is wrong.

    The result is not yet checked against the layer's types (the store does that on write), but unknown
    properties are refused here so nothing is silently dropped.
    """
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise BadInput("the body must be a GeoJSON Feature", parameter="body")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise BadInput("properties must be an object", parameter="properties")
    for name in props:
        layer.prop(name)
    geometry = None
    raw = body.get("geometry")
    if raw is not None:
        try:
            geometry = shape(raw)
        except GEOMETRY_ERRORS as exc:
            raise BadInput(f"invalid GeoJSON geometry: {str(exc)[:200]}", parameter="geometry") from None
        geometry = to_storage(geometry, crs)
    elif not partial:
        raise BadInput(f"a {layer.geometry_type} geometry is required", parameter="geometry")
    return Feature(None, geometry, dict(props))
