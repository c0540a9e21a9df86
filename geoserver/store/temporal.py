"""CQL2 temporal functions (T_AFTER … T_STARTS) as SQL comparisons of instant and interval end points.

An operand is an instant (a date/datetime property or a DATE/TIMESTAMP literal) or an interval
(`INTERVAL(a, b)`, each end a property, a literal or `..`). T_AFTER, T_BEFORE, T_DISJOINT, T_EQUALS and
T_INTERSECTS take either; the other ten relate intervals only, and an instant there is a client error, as
CQL2 says. Each function is its definition in the W3C Time Ontology, written on the four end points.

NULLs: a property used as an instant is unknown when NULL (SQL's three-valued logic: the feature does not
match, and neither does its NOT). A property bounding an INTERVAL reads as unbounded when NULL -- a patrol
without `ended_at` is still going -- as the `datetime` parameter reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from geoserver.catalog import Property
from geoserver.errors import BadInput
from geoserver.features import coerce_value

INSTANT_OR_INTERVAL = ("t_after", "t_before", "t_disjoint", "t_equals", "t_intersects")
INTERVAL_ONLY = ("t_contains", "t_during", "t_finishedby", "t_finishes", "t_meets", "t_metby", "t_overlappedby",
                 "t_overlaps", "t_startedby", "t_starts")
TEMPORAL_OPS = INSTANT_OR_INTERVAL + INTERVAL_ONLY
TEMPORAL_TYPES = ("datetime", "date")


@dataclass(frozen=True)
class End:
    """One end of an operand: a column, a typed literal, or unbounded (-1 since ever, +1 for ever)."""

    prop: Property | None = None
    value: Any = None
    unbounded: int = 0
    null_is: int = 0  # for a column bounding an INTERVAL: what a NULL reads as (-1 or +1); 0: unknown


@dataclass(frozen=True)
class Sql:
    """A clause and its parameters."""

    text: str
    params: tuple[Any, ...] = ()


Clause = Sql | bool  # a bool is decided here, without the database


def _and(*parts: Clause) -> Clause:
    if any(p is False for p in parts):
        return False
    rest = [p for p in parts if p is not True]
    if not rest:
        return True
    return rest[0] if len(rest) == 1 else Sql(" AND ".join(f"({p.text})" for p in rest),  # type: ignore[union-attr]
                                               tuple(x for p in rest for x in p.params))  # type: ignore[union-attr]


def _or(*parts: Clause) -> Clause:
    if any(p is True for p in parts):
        return True
    rest = [p for p in parts if p is not False]
    if not rest:
        return False
    return rest[0] if len(rest) == 1 else Sql(" OR ".join(f"({p.text})" for p in rest),  # type: ignore[union-attr]
                                               tuple(x for p in rest for x in p.params))  # type: ignore[union-attr]


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, "=": lambda a, b: a == b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_FLIP = {"<": ">", "<=": ">=", "=": "=", ">": "<", ">=": "<="}


class TemporalCompiler:
    """Compiles one temporal function for a dialect; `prop` resolves a property reference (BadInput if unknown)."""

    def __init__(self, quote: Callable[[str], str], placeholder: str, param: Callable[[Property, Any], Any],
                 prop: Callable[[Any], Property]) -> None:
        self.quote = quote
        self.ph = placeholder
        self.param = param
        self.prop = prop

    def compile(self, op: str, args: list[Any]) -> tuple[str, list[Any]]:
        """The SQL and parameters of `op(args[0], args[1])`."""
        if len(args) != 2:
            raise BadInput(f"{op} takes 2 arguments, got {len(args)}", parameter="filter")
        kind = self._type(args)
        (a0, a1, a_interval), (b0, b1, b_interval) = (self._operand(x, kind) for x in args)
        if op in INTERVAL_ONLY and not (a_interval and b_interval):
            raise BadInput(f"{op.upper()} relates two intervals (CQL2 makes an instant here a client error); "
                           "write INTERVAL(start, end)", parameter="filter")
        c = self._cmp
        clause = {
            "t_after": lambda: c(a0, ">", b1),
            "t_before": lambda: c(a1, "<", b0),
            "t_disjoint": lambda: _or(c(a1, "<", b0), c(a0, ">", b1)),
            "t_equals": lambda: _and(c(a0, "=", b0), c(a1, "=", b1)),
            "t_intersects": lambda: _and(c(a0, "<=", b1), c(a1, ">=", b0)),
            "t_contains": lambda: _and(c(a0, "<", b0), c(a1, ">", b1)),
            "t_during": lambda: _and(c(a0, ">", b0), c(a1, "<", b1)),
            "t_finishedby": lambda: _and(c(a0, "<", b0), c(a1, "=", b1)),
            "t_finishes": lambda: _and(c(a0, ">", b0), c(a1, "=", b1)),
            "t_meets": lambda: c(a1, "=", b0),
            "t_metby": lambda: c(a0, "=", b1),
            "t_overlappedby": lambda: _and(c(a0, ">", b0), c(a0, "<", b1), c(a1, ">", b1)),
            "t_overlaps": lambda: _and(c(a0, "<", b0), c(a1, ">", b0), c(a1, "<", b1)),
            "t_startedby": lambda: _and(c(a0, "=", b0), c(a1, ">", b1)),
            "t_starts": lambda: _and(c(a0, "=", b0), c(a1, "<", b1)),
        }[op]()
        if isinstance(clause, bool):
            return ("1 = 1" if clause else "1 = 0"), []
        return clause.text, list(clause.params)

    # -- operands ---------------------------------------------------------------------------------------
    def _type(self, args: list[Any]) -> str | None:
        """The one temporal type of the properties named (None when only literals are)."""
        kinds = set()
        for node in args:
            bounds = node["interval"] if isinstance(node, dict) and isinstance(node.get("interval"), list) else [node]
            for b in bounds:
                if isinstance(b, dict) and "property" in b:
                    p = self.prop(b)
                    if p.type not in TEMPORAL_TYPES:
                        raise BadInput(f"temporal functions need date or datetime properties; {p.name!r} is "
                                       f"{p.type}", parameter="filter")
                    kinds.add(p.type)
        if len(kinds) > 1:
            raise BadInput("a temporal function cannot mix date and datetime properties", parameter="filter")
        return kinds.pop() if kinds else None

    def _operand(self, node: Any, kind: str | None) -> tuple[End, End, bool]:
        if isinstance(node, dict) and "interval" in node:
            bounds = node["interval"]
            if not (isinstance(bounds, list) and len(bounds) == 2):
                raise BadInput("an interval has two ends", parameter="filter")
            return self._end(bounds[0], kind, -1), self._end(bounds[1], kind, +1), True
        if isinstance(node, dict) and ("property" in node or "timestamp" in node or "date" in node):
            end = self._end(node, kind, 0)
            return end, end, False
        raise BadInput("a temporal function compares instants (a property, DATE, TIMESTAMP) and INTERVALs",
                       parameter="filter")

    def _end(self, node: Any, kind: str | None, side: int) -> End:
        if isinstance(node, dict) and "property" in node:
            return End(prop=self.prop(node), null_is=side)
        if node == ".." and side:
            return End(unbounded=side)
        text, literal_kind = node, None
        if isinstance(node, dict) and len(node) == 1 and ("timestamp" in node or "date" in node):
            literal_kind, text = next(iter(node.items()))
        if not isinstance(text, str):
            raise BadInput(f"expected a date or timestamp, got {str(node)[:60]}", parameter="filter")
        target = kind or ("date" if literal_kind == "date" or (literal_kind is None and len(text) == 10)
                          else "datetime")
        try:
            value = coerce_value(Property("literal", target), text)  # type: ignore[arg-type]
        except BadInput as exc:
            raise BadInput(f"filter: {exc.message}", parameter="filter") from None
        return End(value=value)

    # -- comparing two ends -------------------------------------------------------------------------------
    def _cmp(self, a: End, op: str, b: End) -> Clause:
        if a.prop is not None and a.null_is:  # a NULL interval end reads as unbounded
            col = self.quote(a.prop.name)
            return _or(_and(Sql(f"{col} IS NOT NULL"), self._cmp(replace(a, null_is=0), op, b)),
                       _and(Sql(f"{col} IS NULL"), self._cmp(End(unbounded=a.null_is), op, b)))
        if b.prop is not None and b.null_is:
            col = self.quote(b.prop.name)
            return _or(_and(Sql(f"{col} IS NOT NULL"), self._cmp(a, op, replace(b, null_is=0))),
                       _and(Sql(f"{col} IS NULL"), self._cmp(a, op, End(unbounded=b.null_is))))
        if a.prop is None and b.prop is not None:
            return self._cmp(b, _FLIP[op], a)
        if a.prop is not None:
            col = self.quote(a.prop.name)
            if b.prop is not None:
                return Sql(f"{col} {op} {self.quote(b.prop.name)}")
            if b.unbounded:  # true (or false) for every known value; NULL stays unknown
                holds = _OPS[op](0, b.unbounded)
                return Sql(f"{col} = {col}" if holds else f"{col} <> {col}")
            return Sql(f"{col} {op} {self.ph}", (self.param(a.prop, b.value),))
        return _OPS[op](_key(a), _key(b))


def _key(end: End) -> tuple[int, Any]:
    """Orders literal ends: unbounded below or above every instant; dates as midnight UTC beside datetimes."""
    if end.unbounded:
        return (end.unbounded, 0)
    value = end.value
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return (0, value)
