"""SQLite for the shared WHERE compiler: the dialect, value encoding, and the shapely predicates as SQL functions.

Values are stored the GeoPackage way: DATETIME as 'YYYY-MM-DDTHH:MM:SS.sssZ' (UTC), DATE as 'YYYY-MM-DD',
BOOLEAN as 0/1. Because the datetime text is fixed-width UTC, text comparison orders it like time.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from geoserver.catalog import Layer, Property
from geoserver.errors import BadInput
from geoserver.features import Feature, to_utc
from geoserver.store import gpkg
from geoserver.store.where import Dialect, dwithin_box

FID, GEOM = gpkg.q(gpkg.ID_COLUMN), gpkg.q(gpkg.GEOM_COLUMN)
q = gpkg.q

# -- values --------------------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """A datetime as GeoPackage DATETIME text: UTC, milliseconds, 'Z' (years zero-padded to four digits)."""
    v = to_utc(value)
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
            f".{v.microsecond // 1000:03d}Z")


def parse_datetime(text: str) -> datetime:
    """An aware UTC datetime from stored DATETIME text (any ISO 8601 form; naive is taken as UTC)."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def truncate_ms(value: datetime) -> datetime:
    """The datetime at the millisecond precision the GeoPackage stores."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def to_db(prop: Property, value: Any) -> Any:
    """A typed property value as SQLite stores it."""
    if value is None:
        return None
    if prop.type == "datetime":
        return format_datetime(value)
    if prop.type == "date":
        return value.isoformat()
    if prop.type == "boolean":
        return int(bool(value))
    return value


def _from_datetime(v: Any) -> datetime:
    return parse_datetime(v)


def _from_date(v: Any) -> date:
    return date.fromisoformat(v[:10]) if isinstance(v, str) else v


_FROM_DB: dict[str, Callable[[Any], Any]] = {
    "string": str, "integer": int, "number": float, "boolean": bool,
    "datetime": _from_datetime, "date": _from_date,
}


def from_db(prop: Property, value: Any) -> Any:
    """A stored cell as the property's Python type (aware UTC datetime, date, bool, int, float, str)."""
    return None if value is None else _FROM_DB[prop.type](value)


def row_reader(props: Sequence[Property]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """A function turning the property cells of a row into a typed properties dict."""
    convert = [(p.name, _FROM_DB[p.type]) for p in props]

    def read(cells: Sequence[Any]) -> dict[str, Any]:
        return {name: (None if v is None else fn(v)) for (name, fn), v in zip(convert, cells, strict=True)}

    return read


def rows_to_features(rows: Sequence[Sequence[Any]], props: Sequence[Property]) -> list[Feature]:
    """Features from rows shaped (fid, geom blob, *property cells)."""
    read = row_reader(props)
    geoms = gpkg.decode_many([r[1] for r in rows])
    return [Feature(int(r[0]), g, read(r[2:])) for r, g in zip(rows, geoms, strict=True)]


# -- the dialect ---------------------------------------------------------------------------------------


class SQLiteDialect(Dialect):
    """How SQLite (a GeoPackage with its RTree) spells bbox, spatial predicates and typed parameters."""

    name = "sqlite"
    placeholder = "?"

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.rtree = gpkg.q(gpkg.rtree_name(layer.id))

    def param(self, prop: Property | None, value: Any) -> Any:
        """Datetimes and dates formatted exactly as stored; booleans as 0/1."""
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def _rtree_candidates(self, bounds: tuple[float, float, float, float]) -> tuple[str, list[Any]]:
        minx, miny, maxx, maxy = bounds
        sql = (f"{gpkg.q(gpkg.ID_COLUMN)} IN (SELECT id FROM {self.rtree} "
               "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
        return sql, [maxx, minx, maxy, miny]

    def bbox(self, layer: Layer, bbox: tuple[float, float, float, float]) -> tuple[str, list[Any]]:
        """RTree boxes inside the query box are certain; those across its edges get the exact test.

        The RTree holds float32 boxes rounded outwards, so a box overlapping the query box may belong to a
        feature just outside it (or, for lines and areas, whose shape misses it): only those few near the
        edges go through `onemap_bbox`.
        """
        minx, miny, maxx, maxy = bbox
        candidates, params = self._rtree_candidates(bbox)
        inside = (f"{FID} IN (SELECT id FROM {self.rtree} "
                  "WHERE minx >= ? AND maxx <= ? AND miny >= ? AND maxy <= ?)")
        return (f"{candidates} AND ({inside} OR onemap_bbox({GEOM}, ?, ?, ?, ?))",
                [*params, minx, maxx, miny, maxy, minx, miny, maxx, maxy])

    def spatial(self, op: str, geometry: BaseGeometry) -> tuple[str, list[Any]]:
        """RTree candidates (all but s_disjoint imply touching boxes), then the shapely predicate."""
        wkb = shapely.to_wkb(geometry, output_dimension=2, byte_order=1)
        test = f"onemap_{op}({gpkg.q(gpkg.GEOM_COLUMN)}, ?)"
        if op == "s_disjoint":
            return test, [wkb]
        sql, params = self._rtree_candidates(geometry.bounds)
        return f"{sql} AND {test}", [*params, wkb]

    def dwithin(self, geometry: BaseGeometry, metres: float) -> tuple[str, list[Any]]:
        """RTree candidates in a box around the literal, then the geodesic distance test."""
        wkb = shapely.to_wkb(geometry, output_dimension=2, byte_order=1)
        sql, params = self._rtree_candidates(dwithin_box(geometry, metres))
        return f"{sql} AND onemap_s_dwithin({GEOM}, ?, ?)", [*params, wkb, metres]


# -- SQL functions over geometries -----------------------------------------------------------------------


@lru_cache(maxsize=64)
def _literal(wkb: bytes) -> BaseGeometry:
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return geom


@lru_cache(maxsize=64)
def _box(minx: float, miny: float, maxx: float, maxy: float) -> BaseGeometry:
    geom = shapely.box(minx, miny, maxx, maxy)
    shapely.prepare(geom)
    return geom


def _bbox_test(blob: bytes | None, minx: float, miny: float, maxx: float, maxy: float) -> int | None:
    if blob is None:
        return None
    env = gpkg.envelope(blob)
    if env is None:
        return 0
    fminx, fmaxx, fminy, fmaxy = env
    if fminx > maxx or fmaxx < minx or fminy > maxy or fmaxy < miny:
        return 0
    if (fminx >= minx and fmaxx <= maxx and fminy >= miny and fmaxy <= maxy) or (
            fminx == fmaxx and fminy == fmaxy):  # inside the box, or a point whose box touches it
        return 1
    return int(shapely.intersects(_box(minx, miny, maxx, maxy), gpkg.decode(blob)))


# Each predicate as f(literal, feature) so the prepared literal is the first operand where GEOS uses it.
_PREDICATES: dict[str, Callable[[BaseGeometry, BaseGeometry], bool]] = {
    "s_intersects": lambda lit, g: shapely.intersects(lit, g),
    "s_disjoint": lambda lit, g: shapely.disjoint(lit, g),
    "s_equals": lambda lit, g: shapely.equals(g, lit),
    "s_touches": lambda lit, g: shapely.touches(lit, g),
    "s_within": lambda lit, g: shapely.contains(lit, g),  # feature within literal
    "s_contains": lambda lit, g: shapely.within(lit, g),  # feature contains literal
    "s_overlaps": lambda lit, g: shapely.overlaps(g, lit),
    "s_crosses": lambda lit, g: shapely.crosses(g, lit),
}


def _predicate(fn: Callable[[BaseGeometry, BaseGeometry], bool]) -> Callable[[bytes | None, bytes], int | None]:
    def sql_fn(blob: bytes | None, wkb: bytes) -> int | None:
        if blob is None or wkb is None:
            return None
        return int(bool(fn(_literal(wkb), gpkg.decode(blob))))

    return sql_fn


_GEOD = Geod(ellps="WGS84")


def geodesic_distance(a: BaseGeometry, b: BaseGeometry) -> float:
    """Metres on WGS 84 between the nearest points of two lon/lat geometries (0 when they meet).

    Exact for two points, like PostGIS geography. Otherwise the nearest points are found in a local frame
    whose longitudes are shrunk by cos(latitude) -- close to, not always exactly, the geodesic nearest
    points -- and measured geodesically.
    """
    if shapely.intersects(a, b):
        return 0.0
    if a.geom_type == "Point" and b.geom_type == "Point":
        return float(_GEOD.inv(a.x, a.y, b.x, b.y)[2])
    lat = (min(a.bounds[1], b.bounds[1]) + max(a.bounds[3], b.bounds[3])) / 2
    k = max(math.cos(math.radians(lat)), 1e-6)
    pa, pb = nearest_points(*(shapely.transform(g, lambda xy: xy * (k, 1.0)) for g in (a, b)))
    return float(_GEOD.inv(pa.x / k, pa.y, pb.x / k, pb.y)[2])


def _dwithin_test(blob: bytes | None, wkb: bytes, metres: float) -> int | None:
    if blob is None or wkb is None:
        return None
    return int(geodesic_distance(_literal(wkb), gpkg.decode(blob)) <= metres)


def register_predicates(conn: sqlite3.Connection) -> None:
    """Register onemap_bbox, the onemap_s_* predicates (feature geometry blob, literal WKB) → 0/1 and
    onemap_s_dwithin (blob, literal WKB, metres) → 0/1."""
    conn.create_function("onemap_bbox", 5, _bbox_test, deterministic=True)
    conn.create_function("onemap_s_dwithin", 3, _dwithin_test, deterministic=True)
    for op, fn in _PREDICATES.items():
        conn.create_function(f"onemap_{op}", 2, _predicate(fn), deterministic=True)


# -- statements --------------------------------------------------------------------------------------


def selected_properties(layer: Layer, names: tuple[str, ...] | None) -> list[Property]:
    """The properties a query returns (all when none are named); BadInput for an unknown name."""
    if names is None:
        return list(layer.properties)
    try:
        return [layer.prop(n) for n in names]
    except BadInput as exc:
        raise BadInput(exc.message, parameter="properties") from None


def select_list(props: list[Property], with_geometry: bool) -> str:
    """fid, the geometry (or NULL) and the given properties, for a SELECT."""
    cols = [FID, GEOM if with_geometry else "NULL"] + [q(p.name) for p in props]
    return ", ".join(cols)


def order_by(layer: Layer, sortby: tuple[tuple[str, bool], ...]) -> str:
    """ORDER BY with PostgreSQL's null placement (last ascending, first descending), then the id."""
    terms = []
    for name, ascending in sortby:
        if name == "id":
            column = FID
        else:
            try:
                column = q(layer.prop(name).name)
            except BadInput as exc:
                raise BadInput(exc.message, parameter="sortby") from None
        terms.append(f"{column} ASC NULLS LAST" if ascending else f"{column} DESC NULLS FIRST")
    return ", ".join([*terms, FID])
