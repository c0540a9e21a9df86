"""Checking many features at once (bulk loads) and locating them in townships and grids, vectorised.

The checks say exactly what `check_feature` says, row for row: the fast paths only accept values that
`check_feature` would accept unchanged, and the first row they reject is re-checked by `check_feature`
itself so the message is the same, prefixed with the row's index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoserver.catalog import Layer, Property
from geoserver.errors import BadInput
from geoserver.features import Feature, check_feature, coerce_value

# shapely type ids
POINT, LINESTRING, POLYGON, MULTIPOINT, MULTILINESTRING, MULTIPOLYGON = 0, 1, 3, 4, 5, 6
_ALLOWED = {
    "Point": (POINT,),
    "MultiPoint": (POINT, MULTIPOINT),
    "LineString": (LINESTRING,),
    "MultiLineString": (LINESTRING, MULTILINESTRING),
    "Polygon": (POLYGON,),
    "MultiPolygon": (POLYGON, MULTIPOLYGON),
}
_PROMOTE = {MULTIPOINT: shapely.MultiPoint, MULTILINESTRING: shapely.MultiLineString,
            MULTIPOLYGON: shapely.MultiPolygon}
_NAME_TO_ID = {"MultiPoint": MULTIPOINT, "MultiLineString": MULTILINESTRING, "MultiPolygon": MULTIPOLYGON}
# The Python type a checked value of each property type already has (so it needs no coercion).
_EXACT: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool, "date": date,
                           "datetime": datetime}


@dataclass
class Batch:
    """A checked chunk of features, column by column (every declared property, None where absent)."""

    ids: list[int | None]
    geometries: np.ndarray
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.ids)


def check_batch(layer: Layer, features: Sequence[Feature], first_row: int = 0) -> Batch:
    """The features checked as `check_feature` would, column-wise; BadInput names the first bad row.

    Args:
        layer: the layer the features belong to.
        features: the chunk to check.
        first_row: the index of the chunk's first feature in the whole load (for the message).

    Returns:
        The checked columns; geometries are 2D and promoted to the layer's Multi type where it has one.
    """
    n = len(features)
    declared = frozenset(layer.property_names)
    bad = next((i for i, f in enumerate(features) if not declared.issuperset(f.properties)), n)
    columns: dict[str, list[Any]] = {}
    for prop in layer.properties:
        name = prop.name
        column = [f.properties.get(name) for f in features]
        bad = min(bad, _check_column(prop, column, bad))
        columns[name] = column
    geometries, geometry_bad = check_geometries(layer, [f.geometry for f in features])
    bad = min(bad, geometry_bad)
    if bad < n:
        raise_for_row(layer, features[bad], first_row + bad)
    return Batch([f.id for f in features], geometries, columns)


def raise_for_row(layer: Layer, feature: Feature, row: int) -> None:
    """Raise check_feature's BadInput for one feature, prefixed with its row index."""
    try:
        check_feature(layer, feature)
    except BadInput as exc:
        raise BadInput(f"row {row}: {exc.message}", parameter=exc.parameter) from None
    raise BadInput(f"row {row}: invalid feature", parameter="geometry")  # pragma: no cover - checks agree


def _check_column(prop: Property, column: list[Any], stop: int) -> int:
    """Coerce a column in place; the index of its first bad value before `stop` (else len(column))."""
    exact = _EXACT[prop.type]
    enum = frozenset(prop.enum) if prop.enum is not None else None
    required = prop.required
    is_number = prop.type == "number"
    is_datetime = prop.type == "datetime"
    for i in range(min(stop, len(column))):
        v = column[i]
        if v is None:
            if required:
                return i
            continue
        if type(v) is exact and (enum is None or v in enum):
            if is_number and not math.isfinite(v):
                return i
            if not is_datetime or (v.tzinfo is UTC and v.microsecond % 1000 == 0):
                continue
        try:
            column[i] = coerce_value(prop, v)
        except BadInput:
            return i
    return len(column)


def check_geometries(layer: Layer, geometries: Sequence[BaseGeometry | None]) -> tuple[np.ndarray, int]:
    """Geometries checked like check_geometry (2D, promoted); and the index of the first bad one (or n)."""
    geoms = np.empty(len(geometries), dtype=object)
    geoms[:] = list(geometries)
    n = len(geoms)
    if n == 0:
        return geoms, 0
    type_ids = shapely.get_type_id(geoms)
    ok = np.isin(type_ids, _ALLOWED[layer.geometry_type]) & ~shapely.is_empty(geoms)
    has_z = shapely.has_z(geoms) & ok
    if has_z.any():
        geoms[has_z] = shapely.force_2d(geoms[has_z])
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        ok &= (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180) & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90)
    ok &= shapely.is_valid(geoms)
    multi = _NAME_TO_ID.get(layer.geometry_type)
    if multi is not None:
        single = ok & (type_ids != multi)
        for i in np.flatnonzero(single):
            geoms[i] = _PROMOTE[multi]([geoms[i]])
    bad = np.flatnonzero(~ok)
    return geoms, int(bad[0]) if bad.size else n


def anchor_geometries(geometries: np.ndarray) -> np.ndarray:
    """The point that locates each geometry, as point geometries.

    A point is itself (a multipoint: its first point), a polygon its representative point (always inside
    it), a line its first vertex (where the patrol started).
    """
    geoms = np.asarray(geometries, dtype=object)
    type_ids = shapely.get_type_id(geoms)
    if (type_ids == POINT).all():
        return geoms
    points = geoms.copy()
    areal = np.isin(type_ids, (POLYGON, MULTIPOLYGON))
    if areal.any():
        points[areal] = shapely.point_on_surface(geoms[areal])
    multi = np.isin(type_ids, (MULTIPOINT, MULTILINESTRING))
    if multi.any():
        points[multi] = shapely.get_geometry(geoms[multi], 0)
    lines = np.isin(type_ids, (LINESTRING, MULTILINESTRING))
    if lines.any():
        points[lines] = shapely.get_point(points[lines], 0)
    return points


def reference_points(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (lon, lat) arrays of each geometry's anchor point (see anchor_geometries)."""
    coords = shapely.get_coordinates(anchor_geometries(geometries))
    return coords[:, 0], coords[:, 1]


def reference_point(geometry: BaseGeometry) -> tuple[float, float]:
    """The (lon, lat) that locates one geometry (see reference_points)."""
    x, y = reference_points(np.array([geometry], dtype=object))
    return float(x[0]), float(y[0])


class AreaIndex:
    """Areas (townships or grids) by code, to find the one each point falls in, many points at once.

    On a shared boundary the smallest code wins, the same rule the SQL `locate` applies.
    """

    def __init__(self, codes: Sequence[str], geometries: Sequence[BaseGeometry]) -> None:
        order = sorted(range(len(codes)), key=lambda i: codes[i])
        self.codes: list[str] = [codes[i] for i in order]
        geoms = np.empty(len(order), dtype=object)
        geoms[:] = [geometries[i] for i in order]
        shapely.prepare(geoms)
        self.tree = shapely.STRtree(geoms)

    def codes_at(self, points: np.ndarray) -> list[str | None]:
        """The code of the area each point geometry falls in (None outside all of them)."""
        n = len(points)
        if n == 0 or not self.codes:
            return [None] * n
        point_idx, area_idx = self.tree.query(points, predicate="intersects")
        best = np.full(n, len(self.codes), dtype=np.int64)
        np.minimum.at(best, point_idx, area_idx)
        codes = self.codes + [None]
        return [codes[j] for j in best.tolist()]
