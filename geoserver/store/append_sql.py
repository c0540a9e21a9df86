"""Set-based appends and column reads in each store's SQL: many features in one statement, many rows back as
columns.

`append` inserts a batch in one statement (PostgreSQL: `unnest` of typed arrays, located by spatial join and
`ON CONFLICT DO NOTHING` on a unique key; SQLite: one prepared insert run for every row inside the caller's
write transaction) and tells which rows were new. Its change-log rows are summaries, one per township the
new rows fall in, not one per feature: a phone's batch of a thousand fixes is one change on the live stream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
import shapely

from geoserver.access import Scope
from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Layer
from geoserver.changes import INSERT, PendingChange
from geoserver.features import Feature, FeatureQuery
from geoserver.store import gpkg
from geoserver.store.batches import AreaIndex, Batch, check_batch
from geoserver.store.guards import require_scope
from geoserver.store.postgis_sql import COPY_TYPES, DIALECT, LayerSQL, quote
from geoserver.store.sqlite_dialect import SQLiteDialect, from_db, order_by, to_db
from geoserver.store.where import build_where


def _check(layer: Layer, features: Sequence[Feature], unique: Sequence[str]) -> Batch:
    """The batch checked column-wise; the unique columns must be declared properties."""
    for name in unique:
        layer.prop(name)
    return check_batch(layer, list(features))


def summary_changes(layer: Layer, batch: Batch, new: Sequence[bool], summary: dict[str, Any]) -> list[PendingChange]:
    """One insert change per township of the new rows: no feature id, the bbox of those rows, their count and
    the caller's summary properties (what a live screen needs to fetch them)."""
    groups: dict[str | None, list[int]] = {}
    for i, fresh in enumerate(new):
        if fresh:
            groups.setdefault(batch.columns[TOWNSHIP_KEY][i], []).append(i)
    out = []
    for township, rows in sorted(groups.items(), key=lambda kv: str(kv[0])):
        b = shapely.total_bounds(batch.geometries[rows])
        props = {**summary, "count": len(rows)}
        if township is not None:
            props[TOWNSHIP_KEY] = township
        out.append(PendingChange(layer.id, None, INSERT, township_after=township,
                                 after=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), properties=props))
    return out


def _point_columns(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coords = shapely.get_coordinates(geometries)
    if len(coords) != len(geometries):
        raise ValueError("column reads take point layers only")
    return coords[:, 0], coords[:, 1]


# -- PostgreSQL -------------------------------------------------------------------------------------------


def pg_append(conn: psycopg.Connection, layer: Layer, sql: LayerSQL, features: Sequence[Feature], scope: Scope,
              unique: Sequence[str]) -> tuple[Batch, list[bool]]:
    """Insert the features in one statement, skipping rows whose `unique` key is stored already (a unique
    index on those columns must exist); returns the checked batch and which rows were inserted.

    The rows go by binary COPY into a temporary table of the session (emptied at commit), then one
    INSERT … SELECT locates them (GiST joins against townships and grids) and skips the stored keys.
    """
    batch = _check(layer, features, unique)
    names = [n for n in sql.names if not (layer.locate_on_write and n in (TOWNSHIP_KEY, GRID_KEY))]
    staging = quote(f"onemap_append_{layer.id}")
    cols = ", ".join(quote(n) for n in names)
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (onemap_wkb bytea, onemap_i int8, "
                 + ", ".join(f"{quote(n)} {COPY_TYPES[layer.prop(n).type]}" for n in names)
                 + ") ON COMMIT DELETE ROWS")
    wkbs = shapely.to_wkb(batch.geometries, output_dimension=2, byte_order=1).tolist()
    with conn.cursor() as cur, cur.copy(f"COPY {staging} (onemap_wkb, onemap_i, {cols}) FROM STDIN (FORMAT BINARY)"
                                        ) as copy:
        copy.set_types(["bytea", "int8", *(COPY_TYPES[layer.prop(n).type] for n in names)])
        for row in zip(wkbs, range(len(wkbs)), *(batch.columns[n] for n in names), strict=True):
            copy.write_row(row)
    located = []
    if layer.locate_on_write:
        located.append(f"(SELECT {TOWNSHIP_KEY} FROM townships WHERE {TOWNSHIP_KEY} IS NOT NULL AND "
                       f"ST_Intersects(geom, s.geom) ORDER BY {TOWNSHIP_KEY} COLLATE \"C\" LIMIT 1)")
        if layer.has_grid:
            located.append(f"(SELECT {GRID_KEY} FROM grids WHERE {GRID_KEY} IS NOT NULL AND "
                           f"ST_Intersects(geom, s.geom) ORDER BY {GRID_KEY} COLLATE \"C\" LIMIT 1)")
    keys = [TOWNSHIP_KEY, GRID_KEY][:len(located)]
    statement = (
        f"INSERT INTO {sql.table} (geom, {cols}{''.join(', ' + quote(k) for k in keys)})"
        f" SELECT s.geom, {', '.join('s.' + quote(n) for n in names)}{''.join(', ' + x for x in located)}"
        f" FROM (SELECT ST_GeomFromWKB(onemap_wkb, 4326) AS geom, * FROM {staging}) s ORDER BY s.onemap_i"
        f" ON CONFLICT ({', '.join(quote(n) for n in unique)}) DO NOTHING"
        f" RETURNING {', '.join(quote(n) for n in unique)}, {quote(TOWNSHIP_KEY)}"
        + (f", {quote(GRID_KEY)}" if layer.has_grid else ""))
    rows = conn.execute(statement).fetchall()
    conn.execute(f"DELETE FROM {staging}")  # a second append in this transaction starts empty
    k = len(unique)
    stored = {tuple(r[:k]): r[k:] for r in rows}
    new = []
    for i in range(len(batch)):
        key = tuple(batch.columns[n][i] for n in unique)
        hit = stored.pop(key, None)  # a key twice in the batch: the first row is the inserted one
        new.append(hit is not None)
        if hit is not None and layer.locate_on_write:
            batch.columns[TOWNSHIP_KEY][i] = hit[0]
            if layer.has_grid:
                batch.columns[GRID_KEY][i] = hit[1]
    for i, fresh in enumerate(new):
        if fresh:
            require_scope(layer, scope, {TOWNSHIP_KEY: batch.columns[TOWNSHIP_KEY][i]})
    return batch, new


def pg_columns(conn: psycopg.Connection, layer: Layer, sql: LayerSQL, query: FeatureQuery, scope: Scope,
               names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Ids, lon, lat and the named properties of every point feature the query matches, in its order: one row
    of arrays (binary float8[] loads far faster than thousands of row tuples)."""
    where = build_where(DIALECT, layer, query, scope)
    order = sql.order_by(query.sortby)
    exprs = ["fid", "ST_X(geom)", "ST_Y(geom)"] + [
        f"extract(epoch FROM {quote(p.name)})::float8" if p.type == "datetime" else quote(p.name)
        for p in (layer.prop(n) for n in names)]
    statement = (f"SELECT {', '.join(f'array_agg({e} ORDER BY {order})' for e in exprs)}"
                 f" FROM {sql.table} {where.sql()}")
    with conn.cursor(binary=True) as cur:
        row = cur.execute(statement, where.params).fetchone()
    arrays = [a or [] for a in row]
    values: dict[str, Any] = {}
    for name, column in zip(names, arrays[3:], strict=True):
        values[name] = np.asarray(column, dtype=float) if layer.prop(name).type == "datetime" else list(column)
    return (np.asarray(arrays[0], dtype=np.int64), np.asarray(arrays[1], dtype=float),
            np.asarray(arrays[2], dtype=float), values)


def _columnar(layer: Layer, rows: list[Any], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            dict[str, Any]]:
    """Rows (fid, x, y, *values) as arrays; datetime values are epoch seconds (float64)."""
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * (3 + len(names))
    values: dict[str, Any] = {}
    for i, name in enumerate(names):
        column = cols[3 + i]
        values[name] = (np.asarray(column, dtype=float) if layer.prop(name).type == "datetime" else list(column))
    return (np.asarray(cols[0], dtype=np.int64), np.asarray(cols[1], dtype=float), np.asarray(cols[2], dtype=float),
            values)


# -- SQLite (the GeoPackage) -------------------------------------------------------------------------------


def sqlite_append(conn: sqlite3.Connection, layer: Layer, features: Sequence[Feature], scope: Scope,
                  unique: Sequence[str], areas: dict[str, AreaIndex]) -> tuple[Batch, list[bool]]:
    """Insert the features inside the open write transaction, skipping rows whose `unique` key is stored
    already; township and grid from `areas` (in memory). Returns the checked batch and which rows were new."""
    batch = _check(layer, features, unique)
    if layer.locate_on_write:
        points = batch.geometries
        for key in (TOWNSHIP_KEY, GRID_KEY):
            if key in areas and (key == TOWNSHIP_KEY or layer.has_grid):
                batch.columns[key] = areas[key].codes_at(points)
    props = list(layer.properties)
    t = gpkg.q(layer.id)
    statement = (f"INSERT INTO {t} ({gpkg.q(gpkg.GEOM_COLUMN)}, {', '.join(gpkg.q(p.name) for p in props)})"
                 f" VALUES ({', '.join(['?'] * (len(props) + 1))})"
                 f" ON CONFLICT ({', '.join(gpkg.q(n) for n in unique)}) DO NOTHING")
    blobs = gpkg.encode_many(list(batch.geometries))
    columns = [[to_db(p, v) for v in batch.columns[p.name]] for p in props]
    new = []
    cur = conn.cursor()
    for i, blob in enumerate(blobs):
        cur.execute(statement, [blob, *(c[i] for c in columns)])
        new.append(cur.rowcount == 1)
    for i, fresh in enumerate(new):
        if fresh:
            require_scope(layer, scope, {TOWNSHIP_KEY: batch.columns[TOWNSHIP_KEY][i]})
    if any(new):
        gpkg.touch_contents(conn, layer.id, tuple(float(v) for v in shapely.total_bounds(
            batch.geometries[np.asarray(new)])), grow=True)
    return batch, new


def sqlite_columns(conn: sqlite3.Connection, layer: Layer, query: FeatureQuery, scope: Scope,
                   names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Ids, lon, lat and the named properties of every point feature the query matches, in its order."""
    props = [layer.prop(n) for n in names]
    where = build_where(SQLiteDialect(layer), layer, query, scope)
    # DATETIME text to epoch seconds, exact to the millisecond it is stored with
    cols = "".join(f", round((julianday({gpkg.q(p.name)}) - 2440587.5) * 86400000.0) / 1000.0"
                   if p.type == "datetime" else f", {gpkg.q(p.name)}" for p in props)
    rows = conn.execute(f"SELECT {gpkg.q(gpkg.ID_COLUMN)}, {gpkg.q(gpkg.GEOM_COLUMN)}{cols} FROM {gpkg.q(layer.id)}"
                        f" {where.sql()} ORDER BY {order_by(layer, query.sortby)}", where.params).fetchall()
    if rows:
        x, y = _point_columns(np.asarray(gpkg.decode_many([r[1] for r in rows]), dtype=object))
        rows = [(r[0], a, b, *(v if p.type == "datetime" else from_db(p, v) for p, v in zip(props, r[2:], strict=True)))
                for r, a, b in zip(rows, x.tolist(), y.tolist(), strict=True)]
    return _columnar(layer, rows, names)
