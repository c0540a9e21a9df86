"""WHERE clauses for both stores from one compiler: scope, bbox, datetime, ids and CQL2-JSON filters.

Every property is checked against the layer's declarations and every literal becomes a bound parameter,
so no text from a request reaches the database. The caller's scope is ANDed outside the filter, so no
filter can widen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from geoserver.access import Scope
from geoserver.catalog import TOWNSHIP_KEY, Layer, Property
from geoserver.crs import GEOMETRY_ERRORS
from geoserver.errors import BadInput
from geoserver.features import FeatureQuery, coerce_value
from geoserver.store.temporal import TEMPORAL_OPS, TemporalCompiler

ID_COLUMN = "fid"
COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
SPATIAL_OPS = ("s_intersects", "s_disjoint", "s_equals", "s_touches", "s_within", "s_overlaps",
               "s_crosses", "s_contains")
DISTANCE_OPS = ("s_dwithin", "dwithin")
# Distance units a filter may name, in metres (cql2 reads a bare unit word as a property reference).
DISTANCE_UNITS = {"meters": 1.0, "metres": 1.0, "m": 1.0, "kilometers": 1000.0, "kilometres": 1000.0, "km": 1000.0}
# A filter is refused (400) beyond this many conditions (comparisons, predicates and IN values): the
# stores would otherwise fail on it deep inside (SQLite's expression depth, bound-parameter limits).
MAX_CONDITIONS = 1000
MAX_LIKE_PATTERN = 1000  # characters; SQLite refuses patterns past 50,000 bytes with an internal error
_BALANCE = 8  # AND/OR operands joined flat; longer lists are nested in halves so the SQL tree stays shallow


class Dialect:
    """How one database spells what the compiler needs."""

    name = "abstract"
    placeholder = "?"

    def quote(self, identifier: str) -> str:
        """A quoted identifier (names come from the catalog, never from a request)."""
        return '"' + identifier.replace('"', '""') + '"'

    def param(self, prop: Property | None, value: Any) -> Any:
        """A Python value as this database binds it."""
        return value

    def bbox(self, layer: Layer, bbox: tuple[float, float, float, float]) -> tuple[str, list[Any]]:
        """A clause true for features whose geometry intersects the lon/lat box."""
        raise NotImplementedError

    def spatial(self, op: str, geometry: BaseGeometry) -> tuple[str, list[Any]]:
        """A clause applying a CQL2 spatial operator between the feature geometry and a literal."""
        raise NotImplementedError

    def dwithin(self, geometry: BaseGeometry, metres: float) -> tuple[str, list[Any]]:
        """A clause true for features whose geodesic (WGS 84) distance to the literal is at most `metres`."""
        raise NotImplementedError

    def sort_key(self, prop: Property) -> str:
        """The expression to order by for a property (bytewise order for text in both stores)."""
        return self.quote(prop.name)


@dataclass
class Where:
    """Accumulates `AND`ed clauses with their parameters."""

    dialect: Dialect
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, params: list[Any] | tuple[Any, ...] = ()) -> None:
        """Add one clause and its parameters."""
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        """`WHERE …` or an empty string."""
        return ("WHERE " + " AND ".join(f"({c})" for c in self.clauses)) if self.clauses else ""


def scope_clause(dialect: Dialect, scope: Scope) -> tuple[str, list[Any]] | None:
    """The clause that keeps a read inside the scope: its townships, and its owner when it has one (None when
    unrestricted)."""
    if scope.townships is not None and not scope.townships:
        return "1 = 0", []
    clauses: list[str] = []
    params: list[Any] = []
    if scope.townships is not None:
        codes = sorted(scope.townships)
        clauses.append(f"{dialect.quote(TOWNSHIP_KEY)} IN ({', '.join([dialect.placeholder] * len(codes))})")
        params.extend(codes)
    if scope.owner is not None:
        clauses.append(f"{dialect.quote(scope.owner[0])} = {dialect.placeholder}")
        params.append(scope.owner[1])
    if not clauses:
        return None
    return " AND ".join(clauses), params


def build_where(dialect: Dialect, layer: Layer, query: FeatureQuery, scope: Scope) -> Where:
    """The full WHERE for a query: scope first, then ids, bbox, datetime and the CQL2 filter."""
    where = Where(dialect)
    sc = scope_clause(dialect, scope)
    if sc:
        where.add(*sc)
    if query.ids is not None:
        if not query.ids:
            where.add("1 = 0")
        else:
            where.add(f"{ID_COLUMN} IN ({', '.join([dialect.placeholder] * len(query.ids))})", list(query.ids))
    if query.bbox is not None:
        where.add(*dialect.bbox(layer, query.bbox))
    if query.datetime is not None:
        clause = datetime_clause(dialect, layer, query.datetime)
        if clause:
            where.add(*clause)
    if query.filter is not None:
        sql, params = FilterCompiler(dialect, layer).compile(query.filter)
        where.add(sql, params)
    return where


def datetime_clause(
    dialect: Dialect, layer: Layer, interval: tuple[datetime | None, datetime | None]
) -> tuple[str, list[Any]] | None:
    """Features whose time (instant or [start, end]) intersects the closed interval; open ends allowed."""
    if layer.time_field is None:
        raise BadInput(f"collection {layer.id!r} has no time dimension", parameter="datetime")
    start, end = interval
    p_start = layer.prop(layer.time_field)
    p_end = layer.prop(layer.time_end_field) if layer.time_end_field else p_start
    q = dialect.quote
    ph = dialect.placeholder
    clauses, params = [], []
    if end is not None:
        clauses.append(f"{q(p_start.name)} <= {ph}")
        params.append(dialect.param(p_start, end))
    if start is not None:
        if p_end is p_start:
            clauses.append(f"{q(p_start.name)} >= {ph}")
        else:  # an open (running) end counts as still going
            clauses.append(f"({q(p_end.name)} >= {ph} OR {q(p_end.name)} IS NULL)")
        params.append(dialect.param(p_end, start))
    if not clauses:
        return None
    return " AND ".join(clauses), params


class FilterCompiler:
    """Compiles CQL2-JSON into a parameterised clause for one layer and dialect."""

    def __init__(self, dialect: Dialect, layer: Layer) -> None:
        self.d = dialect
        self.layer = layer
        self.conditions = 0
        self.temporal = TemporalCompiler(dialect.quote, dialect.placeholder, dialect.param, self._property)

    def _count(self, n: int = 1) -> None:
        self.conditions += n
        if self.conditions > MAX_CONDITIONS:
            raise BadInput(f"filter too complex: at most {MAX_CONDITIONS} conditions (comparisons, spatial and "
                           "temporal predicates, IN values)", parameter="filter")

    def compile(self, node: Any) -> tuple[str, list[Any]]:
        """The SQL and parameters of a boolean CQL2-JSON expression."""
        if isinstance(node, bool):
            return ("1 = 1" if node else "1 = 0"), []
        if not isinstance(node, dict) or "op" not in node:
            raise BadInput("filter must be a CQL2 boolean expression", parameter="filter")
        op = str(node["op"]).lower()
        args = node.get("args", [])
        if not isinstance(args, list):
            raise BadInput(f"CQL2 operator {op!r} needs an args list", parameter="filter")
        if op in ("and", "or"):
            if len(args) < 2:
                raise BadInput(f"{op} needs at least two operands", parameter="filter")
            return _joined(op.upper(), [self.compile(a) for a in args])
        if op != "not":
            self._count(len(args[1]) if op == "in" and len(args) == 2 and isinstance(args[1], list) else 1)
        if op == "not":
            self._arity(op, args, 1)
            s, p = self.compile(args[0])
            return f"NOT ({s})", p
        if op in COMPARISONS:
            self._arity(op, args, 2)
            return self._comparison(COMPARISONS[op], args[0], args[1])
        if op == "like":
            self._arity(op, args, 2)
            # CQL2 escapes wildcards with a backslash: PostgreSQL's default, SQLite's only when told.
            if isinstance(args[1], str) and len(args[1]) > MAX_LIKE_PATTERN:
                raise BadInput(f"filter too complex: a LIKE pattern has at most {MAX_LIKE_PATTERN} characters",
                               parameter="filter")
            sql, params = self._comparison("LIKE", args[0], args[1], text_only=True)
            return sql + " ESCAPE '\\'", params
        if op == "between":
            self._arity(op, args, 3)
            prop = self._property(args[0])
            lo, hi = self._literal(prop, args[1]), self._literal(prop, args[2])
            ph = self.d.placeholder
            return f"{self.d.quote(prop.name)} BETWEEN {ph} AND {ph}", [lo, hi]
        if op == "in":
            self._arity(op, args, 2)
            prop = self._property(args[0])
            values = args[1]
            if not isinstance(values, list) or not values:
                raise BadInput("IN needs a non-empty list of values", parameter="filter")
            params = [self._literal(prop, v) for v in values]
            return f"{self.d.quote(prop.name)} IN ({', '.join([self.d.placeholder] * len(params))})", params
        if op == "isnull":
            self._arity(op, args, 1)
            prop = self._property(args[0])
            return f"{self.d.quote(prop.name)} IS NULL", []
        if op in SPATIAL_OPS:
            self._arity(op, args, 2)
            return self._spatial(op, args)
        if op in DISTANCE_OPS:
            return self._dwithin(op, args)
        if op in TEMPORAL_OPS:
            return self.temporal.compile(op, args)
        raise BadInput(f"unsupported CQL2 operator {node['op']!r}", parameter="filter")

    # -- pieces -----------------------------------------------------------------------------------------
    def _arity(self, op: str, args: list[Any], n: int) -> None:
        if len(args) != n:
            raise BadInput(f"CQL2 operator {op!r} takes {n} argument(s), got {len(args)}", parameter="filter")

    def _property(self, node: Any) -> Property:
        if not (isinstance(node, dict) and "property" in node):
            raise BadInput("expected a property reference {'property': name}", parameter="filter")
        name = node["property"]
        if name == "id":
            return Property(ID_COLUMN, "integer")
        try:
            return self.layer.prop(name)
        except BadInput as exc:
            raise BadInput(f"filter: {exc.message}", parameter="filter") from None

    def _literal(self, prop: Property, node: Any) -> Any:
        if isinstance(node, dict):
            if "timestamp" in node:
                node = node["timestamp"]
            elif "date" in node:
                node = node["date"]
            else:
                raise BadInput(f"expected a literal value for {prop.name!r}", parameter="filter")
        if isinstance(node, list):
            raise BadInput(f"expected a single value for {prop.name!r}", parameter="filter")
        enum_free = Property(prop.name, prop.type)  # a filter may ask for values outside the enum
        try:
            value = coerce_value(enum_free, node)
        except BadInput as exc:
            raise BadInput(exc.message, parameter="filter") from None
        return self.d.param(prop, value)

    def _comparison(self, sql_op: str, left: Any, right: Any, *, text_only: bool = False) -> tuple[str, list[Any]]:
        if isinstance(right, dict) and "property" in right and not (isinstance(left, dict) and "property" in left):
            left, right = right, left
            sql_op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(sql_op, sql_op)
        if not _is_prop(left) and not _is_prop(right):
            return _constant(sql_op, left, right)
        prop = self._property(left)
        if text_only and prop.type != "string":
            raise BadInput(f"LIKE applies to text properties; {prop.name!r} is {prop.type}", parameter="filter")
        if isinstance(right, dict) and "property" in right:
            other = self._property(right)
            return f"{self.d.quote(prop.name)} {sql_op} {self.d.quote(other.name)}", []
        return f"{self.d.quote(prop.name)} {sql_op} {self.d.placeholder}", [self._literal(prop, right)]

    def _spatial(self, op: str, args: list[Any]) -> tuple[str, list[Any]]:
        a, b = args
        if isinstance(b, dict) and b.get("property") == "geometry":
            a, b = b, a
            op = {"s_within": "s_contains", "s_contains": "s_within"}.get(op, op)
        if not (isinstance(a, dict) and a.get("property") in ("geometry", "geom")):
            raise BadInput(f"{op} compares the 'geometry' property with a geometry literal", parameter="filter")
        return self.d.spatial(op, geometry_literal(b))

    def _dwithin(self, op: str, args: list[Any]) -> tuple[str, list[Any]]:
        if len(args) not in (3, 4):
            raise BadInput(f"{op} takes (geometry, literal, distance[, units]), got {len(args)} argument(s)",
                           parameter="filter")
        a, b, distance, *units = args
        if isinstance(b, dict) and b.get("property") == "geometry":
            a, b = b, a
        if not (isinstance(a, dict) and a.get("property") in ("geometry", "geom")):
            raise BadInput(f"{op} compares the 'geometry' property with a geometry literal", parameter="filter")
        if isinstance(distance, bool) or not isinstance(distance, int | float) or not distance >= 0:
            raise BadInput(f"{op} needs a distance >= 0, got {distance!r}", parameter="filter")
        unit = units[0] if units else "meters"
        if isinstance(unit, dict) and set(unit) == {"property"}:
            unit = unit["property"]
        factor = DISTANCE_UNITS.get(str(unit).lower()) if isinstance(unit, str) else None
        if factor is None:
            raise BadInput(f"{op} units must be one of {', '.join(DISTANCE_UNITS)}; got {unit!r}",
                           parameter="filter")
        metres = float(distance) * factor
        if metres > MAX_DWITHIN_METRES:
            raise BadInput(f"{op} distance is at most {MAX_DWITHIN_METRES:.0f} m", parameter="filter")
        return self.d.dwithin(geometry_literal(b), metres)


def _is_prop(node: Any) -> bool:
    return isinstance(node, dict) and "property" in node


def _constant(sql_op: str, left: Any, right: Any) -> tuple[str, list[Any]]:
    """A comparison of two literals (`1 = 1`), decided here: it never reaches SQL as text."""
    ops = {"=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    scalar = (str, int, float, bool)
    if sql_op not in ops or not isinstance(left, scalar) or not isinstance(right, scalar):
        raise BadInput("a comparison needs a property or two plain literals", parameter="filter")
    try:
        return ("1 = 1" if ops[sql_op](left, right) else "1 = 0"), []
    except TypeError:
        raise BadInput(f"cannot compare {left!r} with {right!r}", parameter="filter") from None


def _joined(word: str, parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """`(a) OR (b) OR …`, nested in halves past a few operands: a long flat chain is as deep as it is long
    to SQLite's parser, which refuses expressions more than 1,000 deep."""
    if len(parts) > _BALANCE:
        half = len(parts) // 2
        parts = [_joined(word, parts[:half]), _joined(word, parts[half:])]
    return f" {word} ".join(f"({s})" for s, _ in parts), [p for _, ps in parts for p in ps]


# Beyond a few hundred kilometres a distance filter is a region, not a neighbourhood (and degree boxes wrap).
MAX_DWITHIN_METRES = 1_000_000.0
_METRES_PER_DEGREE_LAT = 110_574.0  # the shortest degree of latitude on WGS 84 (at the equator)
_METRES_PER_DEGREE_LON = 111_320.0  # a degree of longitude on the equator; times cos(latitude) elsewhere


def dwithin_box(geometry: BaseGeometry, metres: float) -> tuple[float, float, float, float]:
    """A lon/lat box certain to hold every point within `metres` of the geometry (for an index prefilter)."""
    minx, miny, maxx, maxy = geometry.bounds
    dlat = metres / _METRES_PER_DEGREE_LAT * 1.01
    lat = min(max(abs(miny), abs(maxy)) + dlat, 89.9)
    dlon = metres / (_METRES_PER_DEGREE_LON * math.cos(math.radians(lat))) * 1.01
    west, east = minx - dlon, maxx + dlon
    if west < -180.0 or east > 180.0:  # the neighbourhood wraps the antimeridian: every longitude
        west, east = -180.0, 180.0
    return (west, max(miny - dlat, -90.0), east, min(maxy + dlat, 90.0))


def geometry_literal(node: Any) -> BaseGeometry:
    """A shapely geometry from a CQL2-JSON geometry literal (GeoJSON geometry or {'bbox': [...]})."""
    try:
        if isinstance(node, dict) and "bbox" in node:
            minx, miny, maxx, maxy = (float(v) for v in node["bbox"][:4])
            return box(minx, miny, maxx, maxy)
        if isinstance(node, dict) and "type" in node:
            geom = shape(node)
            if geom.is_empty or not geom.is_valid:
                raise ValueError(shapely.is_valid_reason(geom))
            return geom
    except GEOMETRY_ERRORS as exc:
        raise BadInput(f"invalid geometry literal in filter: {exc}", parameter="filter") from None
    raise BadInput("expected a GeoJSON geometry or a bbox literal", parameter="filter")
