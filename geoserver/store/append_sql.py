"""Set-based appends in each store's SQL: many features in one statement (column reads: columns_sql.py).

`append` inserts a batch in one statement (PostgreSQL: `unnest` of typed arrays, located by spatial join and
`ON CONFLICT DO NOTHING` on a unique key; SQLite: one prepared insert run for every row inside the caller's
write transaction) and tells which rows were new. Its change-log rows are summaries, one per township the
new rows fall in, not one per feature: a phone's batch of a thousand fixes is one change on the live stream.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
import shapely

from geoserver.access import Scope
from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Layer
from geoserver.changes import INSERT, PendingChange
from geoserver.features import Feature
from geoserver.store import gpkg
from geoserver.store.batches import AreaIndex, Batch, check_batch
from geoserver.store.guards import require_scope
from geoserver.store.postgis_sql import COPY_TYPES, LayerSQL, quote
from geoserver.store.sqlite_dialect import to_db


def _check(layer: Layer, features: Sequence[Feature], unique: Sequence[str]) -> Batch:
    """The batch checked column-wise; the unique columns must be declared properties."""
    for name in unique:
        layer.prop(name)
    return check_batch(layer, list(features))


def summary_changes(layer: Layer, batch: Batch, new: Sequence[int | bool | None], summary: dict[str, Any]) -> list[PendingChange]:
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


# -- PostgreSQL -------------------------------------------------------------------------------------------


def pg_append(conn: psycopg.Connection, layer: Layer, sql: LayerSQL, features: Sequence[Feature], scope: Scope,
              unique: Sequence[str], grid: str | None = None, fresh: bool = False
              ) -> tuple[Batch, list[int | None]]:
    """Insert the features in one statement, skipping rows whose `unique` key is stored already (a unique
    index on those columns must exist); returns the checked batch and the new id of each inserted row (None
    for a row not inserted).

    The rows go by binary COPY into a temporary table of the session (emptied at commit), then one
    INSERT … SELECT locates them (GiST joins against townships and grids; a point strictly inside `grid` by
    one ST_ContainsProperly against it, its polygon prepared once for the batch) and skips the stored keys.
    """
    batch = _check(layer, features, unique)
    if fresh and grid is not None and layer.locate_on_write and layer.has_grid:
        ids = _pg_copy_fresh(conn, layer, sql, batch, unique, grid)
        if ids is not None:
            for i in range(len(batch)):
                require_scope(layer, scope, {TOWNSHIP_KEY: batch.columns[TOWNSHIP_KEY][i]})
            return batch, ids
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
    hinted = grid is not None and layer.locate_on_write and layer.has_grid
    if layer.locate_on_write:
        located.append(f"(SELECT {TOWNSHIP_KEY} FROM townships WHERE {TOWNSHIP_KEY} IS NOT NULL AND "
                       f"ST_Intersects(geom, s.geom) ORDER BY {TOWNSHIP_KEY} COLLATE \"C\" LIMIT 1)")
        if layer.has_grid:
            located.append(f"(SELECT {GRID_KEY} FROM grids WHERE {GRID_KEY} IS NOT NULL AND "
                           f"ST_Intersects(geom, s.geom) ORDER BY {GRID_KEY} COLLATE \"C\" LIMIT 1)")
    keys = [TOWNSHIP_KEY, GRID_KEY][:len(located)]
    inside = ""
    if hinted:  # the lookups run only for points not strictly inside the hinted grid (COALESCE is lazy)
        located = [f"CASE WHEN h.onemap_in THEN h.{TOWNSHIP_KEY} ELSE {located[0]} END",
                   f"CASE WHEN h.onemap_in THEN h.{GRID_KEY} ELSE {located[1]} END"]
        inside = (f" LEFT JOIN LATERAL (SELECT g.{TOWNSHIP_KEY}, g.{GRID_KEY}, ST_ContainsProperly(g.geom, s.geom)"
                  f" AS onemap_in FROM grids g WHERE g.{GRID_KEY} = %s AND g.{TOWNSHIP_KEY} IS NOT NULL LIMIT 1) h"
                  " ON true")
    statement = (
        f"INSERT INTO {sql.table} (geom, {cols}{''.join(', ' + quote(k) for k in keys)})"
        f" SELECT s.geom, {', '.join('s.' + quote(n) for n in names)}{''.join(', ' + x for x in located)}"
        f" FROM (SELECT ST_GeomFromWKB(onemap_wkb, 4326) AS geom, * FROM {staging}) s{inside} ORDER BY s.onemap_i"
        f" ON CONFLICT ({', '.join(quote(n) for n in unique)}) DO NOTHING"
        f" RETURNING {', '.join(quote(n) for n in unique)}, fid, {quote(TOWNSHIP_KEY)}"
        + (f", {quote(GRID_KEY)}" if layer.has_grid else ""))
    # The staging rows deleted by the same statement: a second append in this transaction starts empty.
    rows = conn.execute(f"WITH written AS ({statement}), emptied AS (DELETE FROM {staging})"
                        " SELECT * FROM written", [grid] if hinted else None).fetchall()
    k = len(unique)
    stored = {tuple(r[:k]): r[k:] for r in rows}
    new: list[int | None] = []
    for i in range(len(batch)):
        key = tuple(batch.columns[n][i] for n in unique)
        hit = stored.pop(key, None)  # a key twice in the batch: the first row is the inserted one
        new.append(hit[0] if hit is not None else None)
        if hit is not None and layer.locate_on_write:
            batch.columns[TOWNSHIP_KEY][i] = hit[1]
            if layer.has_grid:
                batch.columns[GRID_KEY][i] = hit[2]
    for i, fresh in enumerate(new):
        if fresh:
            require_scope(layer, scope, {TOWNSHIP_KEY: batch.columns[TOWNSHIP_KEY][i]})
    return batch, new


def _pg_copy_fresh(conn: psycopg.Connection, layer: Layer, sql: LayerSQL, batch: Batch, unique: Sequence[str],
                   grid: str) -> list[int | None] | None:
    """The batch COPYed straight into the table, when every point lies strictly inside `grid` (its township
    and grid then known without a lookup) and the caller found none of its keys stored (`fresh`); the ids
    taken from the table's identity first. None, with nothing written, when a point is not inside or a key
    turns out to be stored after all (the COPY runs under a savepoint): the caller takes the usual path."""
    if len(set(zip(*(batch.columns[n] for n in unique), strict=True))) < len(batch):
        return None  # a key twice in the batch
    row = conn.execute(f"SELECT {TOWNSHIP_KEY}, ST_AsBinary(geom) FROM grids WHERE {GRID_KEY} = %s"
                       f" AND {TOWNSHIP_KEY} IS NOT NULL LIMIT 1", [grid]).fetchone()
    if row is None or not shapely.contains_properly(shapely.from_wkb(row[1]), batch.geometries).all():
        return None
    n = len(batch)
    batch.columns[TOWNSHIP_KEY] = [row[0]] * n
    batch.columns[GRID_KEY] = [grid] * n
    ids = [r[0] for r in conn.execute("SELECT nextval(pg_get_serial_sequence(%s, 'fid'))"
                                      " FROM generate_series(1, %s)", [layer.id, n]).fetchall()]
    wkbs = shapely.to_wkb(batch.geometries, output_dimension=2, byte_order=1).tolist()
    try:
        with conn.transaction(), conn.cursor() as cur, cur.copy(sql.copy_statement(with_id=True)) as copy:
            copy.set_types(sql.copy_types)
            for r in zip(ids, wkbs, *(batch.columns[p.name] for p in layer.properties), strict=True):
                copy.write_row(r)
    except psycopg.errors.UniqueViolation:
        return None
    return ids


def _key_columns(layer: Layer, column: str, within: tuple[str, int]) -> None:
    if layer.prop(column).type != "string" or layer.prop(within[0]).type != "integer":
        raise ValueError("stored_keys takes a text column within an integer one")


def pg_stored_keys(conn: psycopg.Connection, layer: Layer, sql: LayerSQL, column: str, values: list[str],
                   within: tuple[str, int]) -> list[str]:
    """The values stored in `column` among the rows with `within`, by one `= ANY(…)` probe (the values sent
    as one JSON text: psycopg adapts a list of thousands of strings element by element in Python)."""
    _key_columns(layer, column, within)
    rows = conn.execute(f"SELECT {quote(column)} FROM {sql.table} WHERE {quote(within[0])} = %s AND {quote(column)}"
                        " = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))",
                        (within[1], json.dumps(list(values)))).fetchall()
    return [r[0] for r in rows]


# -- SQLite (the GeoPackage) -------------------------------------------------------------------------------


def sqlite_append(conn: sqlite3.Connection, layer: Layer, features: Sequence[Feature], scope: Scope,
                  unique: Sequence[str], areas: dict[str, AreaIndex], grid: str | None = None
                  ) -> tuple[Batch, list[int | None]]:
    """Insert the features inside the open write transaction, skipping rows whose `unique` key is stored
    already; township and grid from `areas` (in memory), or from `grid` for points strictly inside it.
    Returns the checked batch and the new id of each inserted row (None for a row not inserted)."""
    batch = _check(layer, features, unique)
    if layer.locate_on_write:
        points = batch.geometries
        for key in (TOWNSHIP_KEY, GRID_KEY):
            if key in areas and (key == TOWNSHIP_KEY or layer.has_grid):
                batch.columns[key] = areas[key].codes_at(points)
        row = conn.execute(f"SELECT {gpkg.q(TOWNSHIP_KEY)}, {gpkg.q(gpkg.GEOM_COLUMN)} FROM grids WHERE"
                           f" {gpkg.q(GRID_KEY)} = ? AND {gpkg.q(TOWNSHIP_KEY)} IS NOT NULL LIMIT 1",
                           (grid,)).fetchone() if grid is not None and layer.has_grid else None
        if row is not None and (area := gpkg.decode(row[1])) is not None:
            for i in np.flatnonzero(shapely.contains_properly(area, points)):
                batch.columns[TOWNSHIP_KEY][i], batch.columns[GRID_KEY][i] = row[0], grid
    props = list(layer.properties)
    t = gpkg.q(layer.id)
    statement = (f"INSERT INTO {t} ({gpkg.q(gpkg.GEOM_COLUMN)}, {', '.join(gpkg.q(p.name) for p in props)})"
                 f" VALUES ({', '.join(['?'] * (len(props) + 1))})"
                 f" ON CONFLICT ({', '.join(gpkg.q(n) for n in unique)}) DO NOTHING")
    blobs = gpkg.encode_many(list(batch.geometries))
    columns = [[to_db(p, v) for v in batch.columns[p.name]] for p in props]
    new: list[int | None] = []
    cur = conn.cursor()
    for i, blob in enumerate(blobs):
        cur.execute(statement, [blob, *(c[i] for c in columns)])
        new.append(cur.lastrowid if cur.rowcount == 1 else None)
    for i, fresh in enumerate(new):
        if fresh:
            require_scope(layer, scope, {TOWNSHIP_KEY: batch.columns[TOWNSHIP_KEY][i]})
    if any(new):
        gpkg.touch_contents(conn, layer.id, tuple(float(v) for v in shapely.total_bounds(
            batch.geometries[np.asarray([n is not None for n in new])])), grow=True)
    return batch, new


def sqlite_stored_keys(conn: sqlite3.Connection, layer: Layer, column: str, values: list[str],
                       within: tuple[str, int]) -> list[str]:
    """The values stored in `column` among the rows with `within` (the values as one JSON array)."""
    _key_columns(layer, column, within)
    rows = conn.execute(f"SELECT {gpkg.q(column)} FROM {gpkg.q(layer.id)} WHERE {gpkg.q(within[0])} = ?"
                        f" AND {gpkg.q(column)} IN (SELECT value FROM json_each(?))",
                        (within[1], json.dumps(list(values)))).fetchall()
    return [r[0] for r in rows]
