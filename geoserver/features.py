"""Features, the query a store executes, and the checks every written feature goes through."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geoserver.catalog import Layer, Property
from geoserver.errors import BadInput

MAX_LIMIT = 10_000
# Integers are 64-bit signed in both stores (PostgreSQL bigint, SQLite INTEGER): anything wider is bad input.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Feature:
    """One feature: integer id (None before insert), a lon/lat shapely geometry and typed properties."""

    id: int | None
    geometry: BaseGeometry | None
    properties: dict[str, Any] = field(default_factory=dict)

    def etag(self) -> str:
        """A strong validator of the feature's content (geometry and properties)."""
        h = hashlib.sha1()
        h.update(str(self.id).encode())
        if self.geometry is not None:
            h.update(shapely.to_wkb(self.geometry, output_dimension=2, byte_order=1))
        h.update(json.dumps(self.properties, sort_keys=True, default=_json_default).encode())
        return '"' + h.hexdigest() + '"'


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass(frozen=True)
class FeatureQuery:
    """What to read from one layer. Coordinates are lon/lat (EPSG:4326 axis order lon, lat).

    `filter` is CQL2-JSON (a dict) already parsed; the store compiles it against the layer's declared
    properties, so no raw text reaches the database.
    """

    bbox: tuple[float, float, float, float] | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None
    filter: dict[str, Any] | None = None
    properties: tuple[str, ...] | None = None
    sortby: tuple[tuple[str, bool], ...] = ()  # (property, ascending)
    limit: int = 10
    offset: int = 0
    ids: tuple[int, ...] | None = None
    with_geometry: bool = True

    def __post_init__(self) -> None:
        if not (0 <= self.limit <= MAX_LIMIT):
            raise BadInput(f"limit must be between 0 and {MAX_LIMIT}", parameter="limit")
        if not (0 <= self.offset <= INT64_MAX):
            raise BadInput(f"offset must be between 0 and {INT64_MAX}", parameter="offset")
        if self.bbox is not None:
            minx, miny, maxx, maxy = self.bbox
            if minx > maxx or miny > maxy:
                raise BadInput("bbox must be minx,miny,maxx,maxy with min <= max", parameter="bbox")


@dataclass
class FeaturePage:
    """A page of features and the exact number that matched the query (within the caller's scope)."""

    features: list[Feature]
    number_matched: int


def to_utc(value: datetime) -> datetime:
    """An aware UTC datetime at millisecond precision (naive input is taken as UTC).

    Milliseconds are what a GeoPackage DATETIME holds; PostGIS would keep microseconds, so both stores are
    given the same, coarser value and answer alike.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    else:
        value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def coerce_value(prop: Property, value: Any) -> Any:
    """The value as the property's type, or BadInput naming the property and the expected type."""
    if value is None:
        return None
    t = prop.type
    try:
        if t == "string":
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise TypeError
            out: Any = str(value)
            if "\x00" in out or not _encodable(out):  # PostgreSQL refuses NUL, neither store a lone surrogate
                raise BadInput(f"property {prop.name!r} must be text without NUL characters or unpaired "
                               "surrogates", parameter=prop.name)
        elif t == "integer":
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = int(value)
            if not INT64_MIN <= out <= INT64_MAX:
                raise BadInput(f"property {prop.name!r} must be an integer between {INT64_MIN} and {INT64_MAX}; "
                               f"got {value!r}", parameter=prop.name)
        elif t == "number":
            if isinstance(value, bool):
                raise TypeError
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ValueError
        elif t == "boolean":
            if isinstance(value, bool):
                out = value
            elif value in (0, 1, "0", "1", "true", "false", "True", "False"):
                out = str(value).lower() in ("1", "true")
            else:
                raise TypeError
        elif t == "datetime":
            if isinstance(value, datetime):
                out = to_utc(value)
            elif isinstance(value, str):
                out = to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
            else:
                raise TypeError
        elif t == "date":
            if isinstance(value, datetime):
                out = value.date()
            elif isinstance(value, date):
                out = value
            elif isinstance(value, str):
                out = date.fromisoformat(value)
            else:
                raise TypeError
        else:  # pragma: no cover - the catalog only declares the types above
            raise TypeError
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, OverflowError) and t in ("datetime", "date"):  # a time zone shift left years 1-9999
            raise BadInput(f"property {prop.name!r}: {_shown(value)} lies outside years 1-9999 once moved to UTC",
                           parameter=prop.name) from None
        raise BadInput(
            f"property {prop.name!r} must be of type {t}, got {_shown(value)}", parameter=prop.name
        ) from None
    if prop.enum is not None and out not in prop.enum:
        raise BadInput(
            f"property {prop.name!r} must be one of {', '.join(prop.enum)}; got {_shown(out)}", parameter=prop.name
        )
    return out


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: Any) -> str:
    """A value for an error message, cut short (a 50 MB string is not echoed back)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_GEOM_FAMILY = {
    "Point": ("Point",),
    "MultiPoint": ("Point", "MultiPoint"),
    "LineString": ("LineString",),
    "MultiLineString": ("LineString", "MultiLineString"),
    "Polygon": ("Polygon",),
    "MultiPolygon": ("Polygon", "MultiPolygon"),
}


def check_geometry(layer: Layer, geometry: BaseGeometry | None) -> BaseGeometry:
    """The geometry, promoted to the layer's declared type, or BadInput saying what is wrong with it."""
    if geometry is None or geometry.is_empty:
        raise BadInput(f"a {layer.geometry_type} geometry is required", parameter="geometry")
    gtype = geometry.geom_type
    if gtype not in _GEOM_FAMILY[layer.geometry_type]:
        raise BadInput(
            f"layer {layer.id!r} holds {layer.geometry_type} geometries, got {gtype}", parameter="geometry"
        )
    if geometry.has_z:
        geometry = shapely.force_2d(geometry)
    coords = shapely.get_coordinates(geometry)
    if not ((coords[:, 0] >= -180) & (coords[:, 0] <= 180) & (coords[:, 1] >= -90) & (coords[:, 1] <= 90)).all():
        raise BadInput(
            "coordinates must be longitude/latitude within [-180,180] x [-90,90] (EPSG:4326)",
            parameter="geometry",
        )
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise BadInput(f"invalid geometry: {reason}", parameter="geometry")
    if layer.geometry_type.startswith("Multi") and not gtype.startswith("Multi"):
        geometry = {"MultiPolygon": shapely.MultiPolygon, "MultiLineString": shapely.MultiLineString,
                    "MultiPoint": shapely.MultiPoint}[layer.geometry_type]([geometry])
    return geometry


def check_feature(layer: Layer, feature: Feature, *, partial: bool = False) -> Feature:
    """A copy of the feature with a checked geometry and typed properties; BadInput on the first problem.

    Unknown properties are refused (they would be silently dropped otherwise). With `partial`, only the
    given properties are checked (a PATCH); otherwise required properties must be present.
    """
    props: dict[str, Any] = {}
    for name, value in feature.properties.items():
        props[name] = coerce_value(layer.prop(name), value)
    if not partial:
        for p in layer.properties:
            if p.required and props.get(p.name) is None:
                raise BadInput(f"property {p.name!r} is required", parameter=p.name)
    geometry = feature.geometry
    if geometry is not None or not partial:
        geometry = check_geometry(layer, geometry)
    return Feature(feature.id, geometry, props)
