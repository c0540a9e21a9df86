"""Counts of features grouped by properties and by local calendar day, week or month, and durations between two
time properties (how many, quantiles, how many ended by a third time), in each store's SQL.

Groups are declared property names, `h3:R` (a heat-mapped layer's H3 cell at resolution R, see h3cells.py), or
`day` / `week` / `month` of the layer's time field in the county's local time (China Standard Time, UTC+8, with no
daylight saving), so a day is the county's day. The WHERE is the same compiled filter and scope every read uses
(geoserver/store/where.py).
"""

from __future__ import annotations

from geoserver.catalog import Layer
from geoserver.errors import BadInput
from geoserver.store import h3cells

BUCKETS = ("day", "week", "month")
H3_GROUP = "h3:"  # `h3:R`: the H3 cell at resolution R of heat-mapped layers
LOCAL_OFFSET_HOURS = 8


def group_expressions(layer: Layer, group_by: tuple[str, ...], dialect: str, quote) -> list[str]:
    """One SQL expression per group (BadInput naming an unknown one)."""
    out = []
    for name in group_by:
        if name.startswith(H3_GROUP):
            out.append(_h3_group(layer, name, dialect, quote))
        elif name in BUCKETS:
            if not layer.time_field:
                raise BadInput(f"{layer.id} has no time to group by {name}", parameter="group_by")
            col = quote(layer.time_field)
            out.append(_bucket(name, col, dialect))
        else:
            if not layer.has_prop(name):
                raise BadInput(f"group_by: unknown property {name!r}; groups: {', '.join(BUCKETS)} or one of "
                               f"{', '.join(layer.property_names)}", parameter="group_by")
            out.append(quote(name))
    return out


def _h3_group(layer: Layer, name: str, dialect: str, quote) -> str:
    """The cell at resolution R of `h3:R` (heat-mapped layers only; see h3cells.py)."""
    if not layer.h3_cells:
        raise BadInput(f"{layer.id} keeps no H3 cells to group by", parameter="group_by")
    try:
        return h3cells.cell_expression(dialect, quote, int(name.removeprefix(H3_GROUP)))
    except ValueError:
        raise BadInput(f"group_by: {name!r} must be h3:R with R from 0 to 15", parameter="group_by") from None


def is_h3(name: str) -> bool:
    """True for an `h3:R` group."""
    return name.startswith(H3_GROUP)


def lacks_cells(group_by: tuple[str, ...], rows) -> bool:
    """True when an `h3:R` group came back NULL: rows written without their cells, to be filled."""
    at = [i for i, g in enumerate(group_by) if is_h3(g)]
    return bool(at) and any(r[i] is None for r in rows for i in at)


def decode(group_by: tuple[str, ...], values: tuple) -> tuple:
    """Group values as callers see them: `h3:R` groups as H3 cell id text."""
    return tuple(h3cells.cell_id(v) if is_h3(g) else v for g, v in zip(group_by, values, strict=True))


def _bucket(name: str, col: str, dialect: str) -> str:
    if dialect == "pg":
        local = f"({col} AT TIME ZONE 'UTC' + interval '{LOCAL_OFFSET_HOURS} hours')"
        fmt = {"day": "YYYY-MM-DD", "week": "YYYY-MM-DD", "month": "YYYY-MM"}[name]
        unit = {"day": "day", "week": "week", "month": "month"}[name]
        return f"to_char(date_trunc('{unit}', {local}), '{fmt}')"
    shift = f"'+{LOCAL_OFFSET_HOURS} hours'"
    if name == "day":
        return f"date({col}, {shift})"
    if name == "week":  # the Monday on or before the local day
        return f"date({col}, {shift}, '-6 days', 'weekday 1')"
    return f"strftime('%Y-%m', {col}, {shift})"


def statement(table: str, groups: list[str], where_sql: str, limit: int | None = None) -> str:
    """SELECT groups…, count(*) … GROUP BY groups ORDER BY groups (the first `limit` groups)."""
    if not groups:
        return f"SELECT count(*) FROM {table} {where_sql}"
    cols = ", ".join(groups)
    positions = ", ".join(str(i + 1) for i in range(len(groups)))
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return f"SELECT {cols}, count(*) FROM {table} {where_sql} GROUP BY {positions} ORDER BY {positions}{tail}"


def durations_source(layer: Layer, start: str, end: str, by: str | None, dialect: str, table: str, quote,
                     where_sql: str) -> str:
    """A subquery of (h: hours from `start` to `end`, ok: 1 if `end` is not after `by`) for every matched feature
    with both times (BadInput naming a property that is not a time of the layer)."""
    for name in (start, end, *([by] if by else [])):
        if not layer.has_prop(name) or layer.prop(name).type != "datetime":
            raise BadInput(f"{name!r} is not a time of {layer.id!r}", parameter=name)
    s, e = quote(start), quote(end)
    if dialect == "pg":
        hours = f"date_part('epoch', {e} - {s}) / 3600.0"  # float8: sorts faster than extract()'s numeric
        ok = f"CASE WHEN {e} <= {quote(by)} THEN 1 ELSE 0 END" if by else "0"
    else:  # GeoPackage DATETIME text: julianday() reads it, fixed-width text compares in time order
        hours = f"(julianday({e}) - julianday({s})) * 24.0"
        ok = f"CASE WHEN {e} <= {quote(by)} THEN 1 ELSE 0 END" if by else "0"
    both = f"{s} IS NOT NULL AND {e} IS NOT NULL"
    where = f"{where_sql} AND {both}" if where_sql.strip() else f"WHERE {both}"
    return f"(SELECT {hours} AS h, {ok} AS ok FROM {table} {where}) AS d"


def pg_durations_statement(source: str, quantiles: tuple[float, ...]) -> str:
    """count, count ending in time, and percentile_cont of each quantile, in one pass."""
    qs = ", ".join(repr(float(q)) for q in quantiles) or "0.5"
    return (f"SELECT count(*), coalesce(sum(ok), 0), percentile_cont(ARRAY[{qs}]::float8[]) "
            f"WITHIN GROUP (ORDER BY h) FROM {source}")


def interpolate(lo: float, hi: float, fraction: float) -> float:
    """The value `fraction` of the way from `lo` to `hi` (percentile_cont's linear interpolation)."""
    return lo + (hi - lo) * fraction
