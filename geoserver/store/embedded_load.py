"""Batch writes into the GeoPackage: bulk loads chunk by chunk, and the townships and grids in memory that key
them and the set-based appends (geoserver/store/append_sql.py) without one lookup per feature.

A chunk at a time is held in memory, so a load of any size streams from its iterator; a bad row anywhere
rolls the whole load back (the caller's write transaction).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Catalog, Layer
from geoserver.errors import BadInput, Conflict, NotFound
from geoserver.features import Feature
from geoserver.store import gpkg, h3cells
from geoserver.store.batches import (
    AreaIndex,
    Batch,
    anchor_geometries,
    check_batch,
    reference_point,
    reference_points,
)
from geoserver.store.guards import feature_id
from geoserver.store.sqlite_dialect import to_db

q = gpkg.q
FID, GEOM = q(gpkg.ID_COLUMN), q(gpkg.GEOM_COLUMN)
TOWNSHIPS, GRIDS = "townships", "grids"
CHUNK = 20_000
_CONVERTED = ("datetime", "date", "boolean")


def bulk_load(conn: sqlite3.Connection, layer: Layer, features: Iterable[Feature], catalog: Catalog, *,
              replace: bool = False, chunk: int = CHUNK) -> int:
    """Check, key and load many features inside the caller's write transaction, in chunks (ids kept when
    given), `chunk` features at a time; returns how many were loaded.

    The RTree is filled from bounds computed for a whole chunk at once, with its insert trigger off for
    the load; ids are assigned as SQLite's AUTOINCREMENT would, so the RTree rows can name them.
    """
    props = list(layer.properties)
    t, rtree = q(layer.id), q(gpkg.rtree_name(layer.id))
    derived = derived_columns(layer)
    sql = (f"INSERT INTO {t} ({FID}, {GEOM}, {', '.join([*(q(p.name) for p in props), *derived])}) "
           f"VALUES ({', '.join(['?'] * (len(props) + len(derived) + 2))})")
    count = 0
    with gpkg.rtree_triggers_off(conn, layer.id, ("insert", "delete")):
        if replace:
            conn.execute(f"DELETE FROM {t}")
            conn.execute(f"DELETE FROM {rtree}")
            # Numbering starts again at 1, as PostGIS's TRUNCATE ... RESTART IDENTITY does.
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (layer.id,))
        next_id = conn.execute(
            f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
            f"coalesce((SELECT max({FID}) FROM {t}), 0)) + 1", (layer.id,)).fetchone()[0]
        areas = area_indexes(conn, catalog) if layer.locate_on_write else {}
        for rows in _chunks(features, chunk):
            batch = check_batch(layer, rows, first_row=count)
            if areas:
                _fill_keys(layer, batch, areas)
            fids = []
            # Ids left out come after every id the chunk gives, wherever it gives them (as in PostGIS).
            next_id = max([next_id, *(_given_id(g, row) + 1 for row, g in enumerate(batch.ids, start=count)
                                      if g is not None)])
            for row, given in enumerate(batch.ids, start=count):
                fid = next_id if given is None else _given_id(given, row)
                next_id = max(next_id, fid + 1)
                fids.append(fid)
            _refuse_taken_ids(conn, t, fids, batch.ids, count)
            columns = [[to_db(p, v) for v in batch.columns[p.name]] if p.type in _CONVERTED
                       else batch.columns[p.name] for p in props]
            if derived:
                columns.append(h3cells.cells_of_many(*reference_points(batch.geometries)))
            conn.executemany(sql, zip(fids, gpkg.encode_many(batch.geometries), *columns, strict=True))
            bounds = shapely.bounds(batch.geometries).tolist()
            conn.executemany(f"INSERT INTO {rtree} VALUES (?, ?, ?, ?, ?)",
                             ((f, b[0], b[2], b[1], b[3]) for f, b in zip(fids, bounds, strict=True)))
            count += len(batch)
        box = conn.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {rtree}").fetchone()
        gpkg.touch_contents(conn, layer.id, None if box[0] is None else box, grow=False)
    return count


def area_indexes(conn: sqlite3.Connection, catalog: Catalog) -> dict[str, AreaIndex]:
    """Townships and grids in memory, indexed, for keying a bulk load or an append in one go."""
    out = {}
    for key, layer_id in ((TOWNSHIP_KEY, TOWNSHIPS), (GRID_KEY, GRIDS)):
        if layer_id in catalog:
            rows = conn.execute(
                f"SELECT {q(key)}, {GEOM} FROM {q(layer_id)} WHERE {q(key)} IS NOT NULL").fetchall()
            out[key] = AreaIndex([r[0] for r in rows], gpkg.decode_many([r[1] for r in rows]))
    return out


def derived_columns(layer: Layer) -> list[str]:
    """Columns written besides the properties: the H3 cells of heat-mapped layers."""
    return [q(h3cells.COLUMN)] if layer.h3_cells else []


def derived_values(layer: Layer, geometry: BaseGeometry) -> list[Any]:
    """Their values for one feature."""
    return [h3cells.cells_of(*reference_point(geometry))] if layer.h3_cells else []


def bounds(geometries: list[BaseGeometry]) -> tuple[float, float, float, float]:
    """The bounding box of the geometries."""
    b = shapely.total_bounds(geometries)
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def _fill_keys(layer: Layer, batch: Batch, areas: dict[str, AreaIndex]) -> None:
    """Fill the township/grid codes a bulk-loaded feature does not carry, by a vectorised spatial join."""
    keys = [k for k in (TOWNSHIP_KEY, GRID_KEY) if k in areas and (k == TOWNSHIP_KEY or layer.has_grid)]
    todo = sorted({i for k in keys for i, v in enumerate(batch.columns[k]) if v is None})
    if not todo:
        return
    points = anchor_geometries(batch.geometries[todo])
    for key in keys:
        column = batch.columns[key]
        for i, code in zip(todo, areas[key].codes_at(points), strict=True):
            if column[i] is None:
                column[i] = code


def _given_id(value: object, row: int) -> int:
    """A given feature id as an int, or BadInput naming the row."""
    try:
        return feature_id(value)
    except NotFound:
        raise BadInput(f"row {row}: the id must be an integer, got {value!r}", parameter="id") from None


def _refuse_taken_ids(conn: sqlite3.Connection, table: str, fids: list[int], given: list, first_row: int) -> None:
    """Conflict naming the first row whose given id is stored already or repeats one earlier in the load."""
    wanted = [fid for fid, g in zip(fids, given, strict=True) if g is not None]
    if not wanted:
        return
    taken = {r[0] for r in conn.execute(f"SELECT {FID} FROM {table} WHERE {FID} IN (SELECT value FROM json_each(?))",
                                        (json.dumps(wanted),))}
    seen: set[int] = set()
    for row, (fid, g) in enumerate(zip(fids, given, strict=True), start=first_row):
        if g is not None and (fid in taken or fid in seen):
            raise Conflict(f"row {row}: feature id {fid} is already taken", parameter="id")
        seen.add(fid)


def _chunks(features: Iterable[Feature], size: int) -> Iterator[list[Feature]]:
    chunk: list[Feature] = []
    for feature in features:
        chunk.append(feature)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
