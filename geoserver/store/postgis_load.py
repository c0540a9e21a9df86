"""Bulk loading into PostGIS: features checked, located and COPYed chunk by chunk in one transaction.

A chunk at a time is held in memory, so a load of any size streams from its iterator; a bad row anywhere
rolls the whole load back.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

import numpy as np
import psycopg
import shapely

from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Layer
from geoserver.errors import BadInput
from geoserver.features import Feature
from geoserver.store import h3cells
from geoserver.store.batches import AreaIndex, Batch, anchor_geometries, check_batch, reference_points
from geoserver.store.postgis_sql import AREAS, SET_SEQUENCE, LayerSQL

CHUNK_ROWS = 50_000
ANALYZE_ROWS = 10_000


def bulk_load(
    conn: psycopg.Connection, layer: Layer, sql: LayerSQL, features: Iterable[Feature], *,
    replace: bool = False, chunk_rows: int | None = None,
) -> int:
    """Load features with binary COPY in one transaction; returns how many were loaded.

    Args:
        conn: an autocommit connection (the load opens its own transaction).
        layer: the layer loaded into.
        sql: that layer's statements.
        features: any iterable; consumed `chunk_rows` at a time.
        replace: empty the layer first (in the same transaction).
        chunk_rows: features held in memory at once (default CHUNK_ROWS).

    Returns:
        The number of features loaded.
    """
    locator = _Locator(conn) if layer.locate_on_write else None
    stream = iter(features)
    chunk_rows = chunk_rows or CHUNK_ROWS
    total = 0
    with conn.transaction():
        if replace:
            conn.execute(f"TRUNCATE {sql.table} RESTART IDENTITY")
        # Into an empty table, building the secondary indexes once at the end is twice as fast as
        # maintaining them row by row (the GiST index of points is built sorted).
        rebuild = _drop_indexes(conn, sql) if _is_empty(conn, sql) else []
        while chunk := list(islice(stream, chunk_rows)):
            batch = check_batch(layer, chunk, first_row=total)
            del chunk
            if locator is not None:
                locator.fill(layer, batch)
            ids = _ids(conn, sql, batch, first_row=total)
            _copy(conn, sql, batch, ids)
            total += len(batch)
        if rebuild:
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for definition in rebuild:
                conn.execute(definition)  # type: ignore[arg-type]  # from pg_get_indexdef, not a request
        if rebuild or total >= ANALYZE_ROWS:
            # Fresh statistics before the first query plans against the new rows (autovacuum comes later).
            conn.execute(f"ANALYZE {sql.table}")
    return total


def _is_empty(conn: psycopg.Connection, sql: LayerSQL) -> bool:
    row = conn.execute(f"SELECT NOT EXISTS (SELECT FROM {sql.table})").fetchone()
    return bool(row and row[0])


def _drop_indexes(conn: psycopg.Connection, sql: LayerSQL) -> list[str]:
    """Drop the table's plain (non-unique) indexes; returns the statements that create them again."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND NOT x.indisunique ORDER BY i.relname",
        [sql.table],
    ).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')  # type: ignore[arg-type]
    return [definition for _, definition in rows]


def _ids(conn: psycopg.Connection, sql: LayerSQL, batch: Batch, first_row: int) -> list[int] | None:
    """The ids to COPY: None when no feature brings one (the identity default applies), else one each.

    Ids given explicitly move the sequence past them first, so ids generated now or later never collide.
    """
    given = [(i, fid) for i, fid in enumerate(batch.ids) if fid is not None]
    if not given:
        return None
    for i, fid in given:
        if isinstance(fid, bool) or not isinstance(fid, int) or not -(2**63) <= fid < 2**63:
            raise BadInput(f"row {first_row + i}: a feature id must be a 64-bit integer, got {fid!r}",
                           parameter="id")
    top = max(fid for _, fid in given)
    if top > 0:
        conn.execute(SET_SEQUENCE, [sql.table, top, sql.table])
    ids: list[Any] = list(batch.ids)
    missing = [i for i, fid in enumerate(ids) if fid is None]
    if missing:
        fresh = conn.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'fid')) FROM generate_series(1, %s)",
            [sql.table, len(missing)],
        ).fetchall()
        for i, (fid,) in zip(missing, fresh, strict=True):
            ids[i] = fid
    return ids


def _copy(conn: psycopg.Connection, sql: LayerSQL, batch: Batch, ids: list[int] | None) -> None:
    """One binary COPY of a checked chunk (geometry sent as WKB; the column's typmod gives it SRID 4326)."""
    wkbs = shapely.to_wkb(batch.geometries, output_dimension=2, byte_order=1).tolist()
    columns = [batch.columns[name] for name in sql.names]
    if sql.derived:
        columns.append(h3cells.cells_of_many(*reference_points(batch.geometries)))
    types = sql.copy_types if ids is not None else sql.copy_types[1:]
    rows = zip(ids, wkbs, *columns, strict=True) if ids is not None else zip(wkbs, *columns, strict=True)
    with conn.cursor() as cur, cur.copy(sql.copy_statement(with_id=ids is not None)) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


class _Locator:
    """Fills missing township/grid codes of a chunk by spatial join in memory (townships read once)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.indexes: dict[str, AreaIndex] = {}

    def _index(self, table: str, key: str) -> AreaIndex:
        if table not in self.indexes:
            with self.conn.cursor(binary=True) as cur:
                rows = cur.execute(AREAS.format(key=key, table=table)).fetchall()
            self.indexes[table] = AreaIndex([r[0] for r in rows], shapely.from_wkb([r[1] for r in rows]))
        return self.indexes[table]

    def fill(self, layer: Layer, batch: Batch) -> None:
        """Set township_code (and grid_code) where the feature does not carry it."""
        keys = [(TOWNSHIP_KEY, "townships")] + ([(GRID_KEY, "grids")] if layer.has_grid else [])
        missing = {key: np.array([v is None for v in batch.columns[key]], dtype=bool) for key, _ in keys}
        todo = np.logical_or.reduce(list(missing.values()))
        if not todo.any():
            return
        rows = np.flatnonzero(todo)
        points = anchor_geometries(batch.geometries[rows])
        for key, table in keys:
            codes = self._index(table, key).codes_at(points)
            column = batch.columns[key]
            for i, code in zip(rows.tolist(), codes, strict=True):
                if column[i] is None:
                    column[i] = code
