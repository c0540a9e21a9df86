"""Column reads in each store's SQL: every point a query matches as numpy arrays, with no Python object per row
where the store lets us avoid it (tracks of tens of thousands of fixes, a day of a county's fixes).

PostgreSQL: one row of arrays (`array_agg` over a subquery sorted once, so the rows are sorted once and not
once per column), sent in binary; float8, int8 and timestamptz arrays are read straight into numpy from the
binary array format. SQLite (the GeoPackage): the rows, with the point coordinates read out of the GeoPackage
binaries in one numpy view when they all share one layout (as the points this store writes do).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg.adapt import Loader
from psycopg.pq import Format

from geoserver.access import Scope
from geoserver.catalog import Layer
from geoserver.features import FeatureQuery
from geoserver.store import gpkg
from geoserver.store.postgis_sql import DIALECT, LayerSQL, quote
from geoserver.store.sqlite_dialect import SQLiteDialect, from_db, order_by
from geoserver.store.where import build_where

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]

# -- PostgreSQL -------------------------------------------------------------------------------------------
FLOAT8_ARRAY, INT8_ARRAY, TIMESTAMPTZ_ARRAY = 1022, 1016, 1185  # pg_type oids
PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z, PostgreSQL's zero of timestamps, in Unix seconds


class _NumpyArrayLoader(Loader):
    """A one-dimensional PostgreSQL array without NULLs, binary format, as a numpy array.

    The binary form: ndim, has-null flag, element oid (int32 each), then (length, lower bound) per dimension,
    then each element as its int32 byte length and its big-endian value. Arrays holding a NULL come back as a
    list (None for the NULLs).
    """

    format = Format.BINARY
    element = np.dtype(">f8")

    def load(self, data: Any) -> np.ndarray | list[Any]:
        buf = memoryview(data)
        ndim, has_null, _ = np.frombuffer(buf[:12], ">i4").tolist()
        if ndim == 0:
            return np.empty(0, dtype=self.element.newbyteorder("="))
        if ndim != 1:
            raise ValueError("column reads take one-dimensional arrays")
        n = int(np.frombuffer(buf[12:16], ">i4")[0])
        if has_null:
            return self._with_nulls(buf[20:], n)
        items = np.frombuffer(buf[20:], dtype=[("size", ">i4"), ("value", self.element)], count=n)
        return self.convert(items["value"].astype(self.element.newbyteorder("=")))

    def convert(self, values: np.ndarray) -> np.ndarray:
        return values

    def _with_nulls(self, buf: memoryview, n: int) -> list[Any]:
        out: list[Any] = []
        pos = 0
        width = self.element.itemsize
        for _ in range(n):
            size = int(np.frombuffer(buf[pos:pos + 4], ">i4")[0])
            pos += 4
            if size < 0:
                out.append(None)
                continue
            out.append(self.convert(np.frombuffer(buf[pos:pos + width], self.element).astype(
                self.element.newbyteorder("=")))[0].item())
            pos += size
        return out


class _Int8ArrayLoader(_NumpyArrayLoader):
    element = np.dtype(">i8")


class _TimestamptzArrayLoader(_NumpyArrayLoader):
    """timestamptz[] as float64 Unix epoch seconds (stored as int64 microseconds since 2000-01-01 UTC)."""

    element = np.dtype(">i8")

    def convert(self, values: np.ndarray) -> np.ndarray:
        seconds, micros = np.divmod(values, 1_000_000)
        return (seconds + PG_EPOCH_S).astype(np.float64) + micros / 1e6


def pg_columns(conn: psycopg.Connection, layer: Layer, sql: LayerSQL, query: FeatureQuery, scope: Scope,
               names: Sequence[str]) -> Arrays:
    """Ids, lon, lat and the named properties of every point feature the query matches, in its order.

    One row of arrays gathered by plain `array_agg`s in one pass over the matching rows. When every sort key
    is an ascending number, time or the id, the rows are read unsorted and put in order here with numpy (a
    sort inside the database costs it far more than the read, for a day of fixes); otherwise they are sorted
    once in a subquery (PostgreSQL feeds an aggregate the rows of a sorted subquery in that order).
    """
    where = build_where(DIALECT, layer, query, scope)
    keys = [n for n, _ in query.sortby if n != "id"]
    here = all(asc and (n == "id" or layer.prop(n).type in _NUMPY_SORTED) for n, asc in query.sortby)
    read = list(names) + [n for n in keys if n not in names] if here else list(names)
    exprs = ["fid", "ST_X(geom)", "ST_Y(geom)"] + [quote(layer.prop(n).name) for n in read]
    if here:
        statement = (f"SELECT {', '.join(f'array_agg({e})' for e in exprs)} FROM {sql.table} {where.sql()}")
    else:
        inner = ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
        statement = (f"SELECT {', '.join(f'array_agg(c{i})' for i in range(len(exprs)))} FROM (SELECT {inner} "
                     f"FROM {sql.table} {where.sql()} ORDER BY {sql.order_by(query.sortby)}) AS s")
    with conn.cursor(binary=True) as cur:
        cur.adapters.register_loader(FLOAT8_ARRAY, _NumpyArrayLoader)
        cur.adapters.register_loader(INT8_ARRAY, _Int8ArrayLoader)
        cur.adapters.register_loader(TIMESTAMPTZ_ARRAY, _TimestamptzArrayLoader)
        row = cur.execute(statement, where.params).fetchone()
    if row is None or row[0] is None:  # no row matched: array_agg of nothing is NULL
        return _empty(layer, names)
    ids = np.asarray(row[0], dtype=np.int64)
    lon, lat = np.asarray(row[1], dtype=float), np.asarray(row[2], dtype=float)
    values: dict[str, Any] = {}
    for name, column in zip(read, row[3:], strict=True):
        if layer.prop(name).type == "datetime":
            values[name] = np.asarray([np.nan if v is None else v for v in column] if isinstance(column, list)
                                      else column, dtype=float)
        else:
            values[name] = column if isinstance(column, np.ndarray) else list(column)
    if here:
        # np.lexsort: the last key sorts first; NaN (a NULL) sorts last, as ASC NULLS LAST does
        order = np.lexsort([ids] + [_sort_key(values[n]) for n in reversed(keys)])
        if (order[1:] < order[:-1]).any():  # not read in order already (a table read in id order is)
            ids, lon, lat = ids[order], lon[order], lat[order]
            picks = order.tolist()
            values = {n: _take(values[n], order, picks) for n in names}
        else:
            values = {n: values[n] for n in names}
    return ids, lon, lat, values


_NUMPY_SORTED = ("integer", "number", "datetime")


def _sort_key(column: np.ndarray | list[Any]) -> np.ndarray:
    if isinstance(column, np.ndarray):
        return column
    return np.asarray([np.nan if v is None else v for v in column], dtype=float)  # a column holding NULLs


def _take(column: np.ndarray | list[Any], order: np.ndarray, picks: list[int]) -> np.ndarray | list[Any]:
    return column[order] if isinstance(column, np.ndarray) else [column[i] for i in picks]


def _empty(layer: Layer, names: Sequence[str]) -> Arrays:
    values: dict[str, Any] = {n: np.empty(0) if layer.prop(n).type == "datetime" else [] for n in names}
    return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), values


# -- SQLite (the GeoPackage) -------------------------------------------------------------------------------
def point_xy(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of GeoPackage point binaries: read in one numpy view when every blob has the first one's
    layout (length, header flags, little-endian 2D WKB point), else decoded one by one."""
    if not blobs:
        return np.empty(0), np.empty(0)
    first = blobs[0]
    size = len(first)
    if len(first) >= 8 and first[:2] == b"GP" and not first[3] & 0b1_0000:
        offset = 8 + 8 * {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}.get((first[3] >> 1) & 0b111, -1)
        if offset >= 8 and size == offset + 21 and first[offset:offset + 5] == b"\x01\x01\x00\x00\x00":
            joined = b"".join(blobs)
            if len(joined) == size * len(blobs):
                rows = np.frombuffer(joined, np.uint8).reshape(len(blobs), size)
                head = rows[:, :4]
                wkb_type = rows[:, offset:offset + 5]
                if (head == head[0]).all() and (wkb_type == wkb_type[0]).all():
                    xy = np.ascontiguousarray(rows[:, offset + 5:offset + 21]).view("<f8")
                    return xy[:, 0].copy(), xy[:, 1].copy()
    coords = shapely.get_coordinates(np.asarray(gpkg.decode_many(list(blobs)), dtype=object))
    if len(coords) != len(blobs):
        raise ValueError("column reads take point layers only")
    return coords[:, 0], coords[:, 1]


def sqlite_columns(conn: sqlite3.Connection, layer: Layer, query: FeatureQuery, scope: Scope,
                   names: Sequence[str]) -> Arrays:
    """Ids, lon, lat and the named properties of every point feature the query matches, in its order."""
    props = [layer.prop(n) for n in names]
    where = build_where(SQLiteDialect(layer), layer, query, scope)
    # DATETIME text to epoch seconds, exact to the millisecond it is stored with
    cols = "".join(f", round((julianday({gpkg.q(p.name)}) - 2440587.5) * 86400000.0) / 1000.0"
                   if p.type == "datetime" else f", {gpkg.q(p.name)}" for p in props)
    rows = conn.execute(f"SELECT {gpkg.q(gpkg.ID_COLUMN)}, {gpkg.q(gpkg.GEOM_COLUMN)}{cols} FROM {gpkg.q(layer.id)}"
                        f" {where.sql()} ORDER BY {order_by(layer, query.sortby)}", where.params).fetchall()
    if not rows:
        return _empty(layer, names)
    columns = list(zip(*rows, strict=True))
    x, y = point_xy(columns[1])
    values: dict[str, Any] = {}
    for p, column in zip(props, columns[2:], strict=True):
        if p.type == "datetime":
            values[p.name] = np.asarray([np.nan if v is None else v for v in column], dtype=float)
        else:
            values[p.name] = [from_db(p, v) for v in column]
    return np.asarray(columns[0], dtype=np.int64), x, y, values
