"""EmbeddedStore: features in a real OGC GeoPackage (stdlib sqlite3 + RTree), readable by GDAL and QGIS as is."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoserver.access import Scope
from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Catalog, Layer
from geoserver.changes import DELETE, INSERT, LOAD, UPDATE, WORLD, Change, PendingChange, feature_change
from geoserver.errors import Conflict, NotFound, StoreUnavailable
from geoserver.features import Feature, FeaturePage, FeatureQuery, check_feature
from geoserver.store import (
    aggregate_sql,
    append_sql,
    embedded_load,
    embedded_mvt,
    gpkg,
    gpkg_migrations,
    h3cells,
    log_sql,
)
from geoserver.store.base import (
    Columns,
    Durations,
    Extent,
    Location,
    Store,
)
from geoserver.store.batches import (
    reference_point,
    reference_points,
)
from geoserver.store.columns_sql import sqlite_columns
from geoserver.store.embedded_accounts import EmbeddedAccounts
from geoserver.store.guards import check_etag, checked_at, feature_id, require_scope
from geoserver.store.sqlite_dialect import (
    SQLiteDialect,
    from_db,
    order_by,
    register_predicates,
    rows_to_features,
    select_list,
    selected_properties,
    to_db,
)
from geoserver.store.where import Where, build_where, scope_clause
from geoserver.vectortile import TileRequest

q = gpkg.q
FID, GEOM = q(gpkg.ID_COLUMN), q(gpkg.GEOM_COLUMN)
TOWNSHIPS, GRIDS = "townships", "grids"
CHUNK = embedded_load.CHUNK  # features held in memory at once by a bulk load


class EmbeddedStore(EmbeddedAccounts, Store):
    """A GeoPackage file: one feature table per layer (named by layer id), an RTree per geometry column.

    Each thread has its own connection; the file is in WAL mode, so readers never wait for the writer,
    and writers are serialised by BEGIN IMMEDIATE.
    """

    kind = "embedded"
    rows_dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str], catalog: Catalog) -> None:
        super().__init__(catalog)
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._generation = 0

    # -- life cycle ---------------------------------------------------------------------------------------
    def open(self) -> None:
        """Check the file can be used; it is created by `initialize()`, never by `open()`."""
        if not self.path.parent.is_dir():
            raise StoreUnavailable(f"cannot open GeoPackage {str(self.path)!r}: its directory does not exist")
        if self.path.exists():
            try:
                with self._guard():
                    app_id = self._conn().execute("PRAGMA application_id").fetchone()[0]
                if app_id not in (0, gpkg.APPLICATION_ID):
                    raise StoreUnavailable(f"{str(self.path)!r} is an SQLite file but not a GeoPackage")
            except StoreUnavailable:
                self.close()
                raise

    def close(self) -> None:
        """Close every connection of every thread."""
        with self._lock:
            conns, self._conns = self._conns, []
            self._generation += 1
        for conn in conns:
            conn.close()

    def initialize(self) -> None:
        """Create the GeoPackage or bring it up to date (numbered steps, see gpkg_migrations), then check
        its tables match the catalog."""
        conn = self._connect("rwc")
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            gpkg_migrations.upgrade(conn, self.catalog)
            drift = gpkg_migrations.schema_drift(conn, self.catalog)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot initialise GeoPackage {str(self.path)!r}: {exc}") from exc
        finally:
            conn.close()
        if drift:
            raise StoreUnavailable(f"GeoPackage {str(self.path)!r} does not match the layer catalog: "
                                   f"{'; '.join(drift)} (add a step in geoserver/store/gpkg_migrations.py)")
        for layer in self.catalog:
            self._fill_h3_cells(layer)

    def health(self) -> dict[str, Any]:
        """{'store': 'embedded', 'path': …, 'layers': number of feature tables}."""
        with self._read() as conn:
            n = conn.execute("SELECT COUNT(*) FROM gpkg_contents WHERE data_type = 'features'").fetchone()[0]
        return {"store": self.kind, "path": str(self.path), "layers": n}

    # -- connections and transactions -----------------------------------------------------------------------
    def _connect(self, mode: str) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.absolute()))}?mode={mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA case_sensitive_like = ON")  # LIKE as in PostgreSQL
            conn.execute("PRAGMA cache_size = -32000")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open GeoPackage {str(self.path)!r}: {exc}") from exc
        gpkg.register_functions(conn)
        register_predicates(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        if not self.path.exists():
            raise StoreUnavailable(f"no GeoPackage at {str(self.path)!r} (initialize() creates it)")
        conn = self._connect("rw")
        with self._lock:
            self._conns.append(conn)
            self._local.held = (self._generation, conn)
        return conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """sqlite3 errors that mean the file is missing, not set up or stuck → StoreUnavailable."""
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"the write clashes with stored data: {exc}") from exc
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailable(f"GeoPackage {str(self.path)!r}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction (one consistent snapshot for every statement in it); inside a write
        transaction of this thread, that transaction."""
        tx = self._tx()
        if tx is not None:
            yield tx.conn
            return
        with self._guard():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def _write(self, actor: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE takes the write lock up front) that appends its change rows
        at the end; any error rolls it all back. Inside an open transaction of this thread: that one."""
        tx = self._tx()
        if tx is not None:
            yield tx.conn
            return
        with self._guard():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                with self._joined(conn, actor) as tx:
                    yield conn
                    log_sql.sqlite_append(conn, tx.pending, actor)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._after_commit(tx)

    def _reading(self) -> Any:
        """A read of the domain tables (joins the open transaction)."""
        return self._read()

    # -- reads --------------------------------------------------------------------------------------------
    def query(self, layer_id: str, query: FeatureQuery, scope: Scope) -> FeaturePage:
        """Features matching the query within the scope, ordered by sortby then id, and the count matched."""
        layer = self.catalog.get(layer_id)
        props = selected_properties(layer, query.properties)
        order = order_by(layer, query.sortby)
        where = build_where(SQLiteDialect(layer), layer, query, scope)
        cols = select_list(props, query.with_geometry)
        t = q(layer.id)
        with self._read() as conn:  # one snapshot: the count agrees with the page
            rows: list[Any] = []
            if query.limit:
                rows = conn.execute(
                    f"SELECT {cols} FROM {t} {where.sql()} ORDER BY {order} LIMIT ? OFFSET ?",
                    [*where.params, query.limit, query.offset]).fetchall()
            if query.limit and len(rows) < query.limit and (rows or not query.offset):
                matched = query.offset + len(rows)  # a short page is its own count
            else:
                matched = conn.execute(f"SELECT COUNT(*) FROM {t} {where.sql()}", where.params).fetchone()[0]
        return FeaturePage(rows_to_features(rows, props), matched)

    def get(self, layer_id: str, fid: int, scope: Scope, *, for_update: bool = False,
            with_geometry: bool = True) -> Feature:
        """One feature; NotFound if it does not exist or lies outside the scope (the same answer for both).
        `for_update` needs no lock here: a write transaction already excludes every other writer."""
        layer = self.catalog.get(layer_id)
        with self._read() as conn:
            found = self._fetch_one(conn, layer, fid, scope)
        return found if with_geometry else Feature(found.id, None, found.properties)

    def stored_keys(self, layer_id: str, column: str, values: list[str], within: tuple[str, int]) -> set[str]:
        """One read: the values as a JSON array joined to the index."""
        layer = self.catalog.get(layer_id)
        if not values:
            return set()
        with self._read() as conn:
            return set(append_sql.sqlite_stored_keys(conn, layer, column, values, within))

    def columns(self, layer_id: str, query: FeatureQuery, scope: Scope, names: tuple[str, ...]) -> Columns:
        """Point features as columns, in one read."""
        layer = self.catalog.get(layer_id)
        with self._read() as conn:
            return Columns(*sqlite_columns(conn, layer, query, scope, names))

    def extent(self, layer_id: str, scope: Scope) -> Extent:
        """Exact bounding box, time interval and count of what the scope sees."""
        layer = self.catalog.get(layer_id)
        where = Where(SQLiteDialect(layer))
        sc = scope_clause(where.dialect, scope)
        if sc:
            where.add(*sc)
        start = q(layer.time_field) if layer.time_field else "NULL"
        # max(start, end) of each row, a running (open) end counting up to its start
        end = f"max({start}, coalesce({q(layer.time_end_field)}, {start}))" if layer.time_end_field else start
        sql = (f"SELECT COUNT(*), min(r.minx), min(r.miny), max(r.maxx), max(r.maxy), min({start}), max({end}) "
               f"FROM {q(layer.id)} LEFT JOIN {q(gpkg.rtree_name(layer.id))} r ON r.id = {FID} {where.sql()}")
        bbox = None
        with self._read() as conn:
            count, minx, miny, maxx, maxy, t0, t1 = conn.execute(sql, where.params).fetchone()
            if count and minx is not None:
                bbox = self._exact_bbox(conn, layer, where, (minx, miny, maxx, maxy))
        if not count:
            return Extent(None, None, 0)
        interval = None
        if layer.time_field and (t0 is not None or t1 is not None):
            prop = layer.prop(layer.time_field)
            interval = (from_db(prop, t0), from_db(prop, t1))
        return Extent(bbox, interval, count)

    def _exact_bbox(self, conn, layer, where: Where, rounded: tuple[float, ...]) -> tuple[float, ...]:
        """The exact bbox, from the few rows whose float32 RTree box lies at the rounded edge.

        The RTree rounds outwards to single precision (about 1e-5 degree here); the exact envelope of each
        geometry is in its GeoPackage header, so only the rows near each edge need reading.
        """
        eps = 1e-4
        sides = (("min", "ST_MinX", "r.minx <= ?", rounded[0] + eps), ("min", "ST_MinY", "r.miny <= ?", rounded[1] + eps),
                 ("max", "ST_MaxX", "r.maxx >= ?", rounded[2] - eps), ("max", "ST_MaxY", "r.maxy >= ?", rounded[3] - eps))
        base = f"FROM {q(layer.id)} JOIN {q(gpkg.rtree_name(layer.id))} r ON r.id = {FID}"
        out = []
        for agg, fn, edge, bound in sides:
            cond = " AND ".join([*(f"({c})" for c in where.clauses), edge])
            sql = f"SELECT {agg}({fn}({GEOM})) {base} WHERE {cond}"
            out.append(conn.execute(sql, [*where.params, bound]).fetchone()[0])
        return tuple(out)

    def locate(self, lon: float, lat: float) -> Location:
        """The township and grid whose area contains the point (None where none does)."""
        with self._read() as conn:
            return self._locate(conn, lon, lat)

    def iter_features(self, layer_id: str, scope: Scope, batch_size: int = 5000) -> Iterator[Feature]:
        """Every feature within the scope in id order, read in batches (no transaction held between them)."""
        layer = self.catalog.get(layer_id)
        props = list(layer.properties)
        last = 0
        while True:
            where = build_where(SQLiteDialect(layer), layer, FeatureQuery(limit=0), scope)
            where.add(f"{FID} > ?", [last])
            sql = (f"SELECT {select_list(props, True)} FROM {q(layer.id)} {where.sql()} "
                   f"ORDER BY {FID} LIMIT ?")
            with self._read() as conn:
                rows = conn.execute(sql, [*where.params, batch_size]).fetchall()
            if not rows:
                return
            yield from rows_to_features(rows, props)
            last = rows[-1][0]

    def tile(self, layer_id: str, request: TileRequest, scope: Scope) -> bytes:
        """One MVT layer built with shapely and mapbox-vector-tile (see embedded_mvt)."""
        return embedded_mvt.render(self, self.catalog.get(layer_id), request, scope)

    # -- writes -------------------------------------------------------------------------------------------
    def insert(self, layer_id: str, features: list[Feature], scope: Scope) -> list[Feature]:
        """Insert in one transaction (ids kept when given); township/grid by spatial join; Forbidden outside scope."""
        layer = self.catalog.get(layer_id)
        checked = [checked_at(layer, f, i, len(features)) for i, f in enumerate(features)]
        if not checked:
            return []
        with self._write() as conn:
            ids = []
            for feature in checked:
                props = self._keyed(conn, layer, feature.geometry, feature.properties)
                require_scope(layer, scope, props)
                ids.append(self._insert_row(conn, layer, feature.id, feature.geometry, props))
            gpkg.touch_contents(conn, layer.id, embedded_load.bounds([f.geometry for f in checked]), grow=True)
            by_id = {f.id: f for f in self._fetch(conn, layer, ids)}
            stored = [by_id[i] for i in ids]
            for f in stored:
                self.record(feature_change(layer, INSERT, None, f))
        return stored

    def append(self, layer_id: str, features: list[Feature], scope: Scope, *, unique: tuple[str, ...],
               summary: dict[str, Any] | None = None, grid: str | None = None,
               fresh: bool = False) -> list[int | None]:
        """One prepared INSERT … ON CONFLICT DO NOTHING per row in one transaction; summary change rows."""
        layer = self.catalog.get(layer_id)
        if not features:
            return []
        with self._write() as conn:
            areas = embedded_load.area_indexes(conn, self.catalog) if layer.locate_on_write else {}
            batch, new = append_sql.sqlite_append(conn, layer, features, scope, unique, areas, grid)
            for change in append_sql.summary_changes(layer, batch, new, summary or {}):
                self.record(change)
        return new

    def update(
        self, layer_id: str, fid: int, feature: Feature, scope: Scope, *,
        partial: bool = False, if_match: str | None = None,
    ) -> Feature:
        """Replace or patch one feature atomically; NotFound outside the scope; PreconditionFailed on a stale ETag."""
        layer = self.catalog.get(layer_id)
        change = check_feature(layer, feature, partial=partial)
        with self._write() as conn:
            current = self._fetch_one(conn, layer, fid, scope)
            check_etag(current, if_match)
            if partial:
                merged = Feature(current.id, change.geometry or current.geometry,
                                 {**current.properties, **change.properties})
                change = check_feature(layer, merged)
            props = self._keyed(conn, layer, change.geometry, change.properties)
            require_scope(layer, scope, props)
            cells = [to_db(p, props.get(p.name)) for p in layer.properties]
            cells += embedded_load.derived_values(layer, change.geometry)
            sets = ", ".join(f"{name} = ?" for name in [q(p.name) for p in layer.properties] + embedded_load.derived_columns(layer))
            conn.execute(f"UPDATE {q(layer.id)} SET {GEOM} = ?, {sets} WHERE {FID} = ?",
                         [gpkg.encode(change.geometry), *cells, current.id])
            gpkg.touch_contents(conn, layer.id, change.geometry.bounds, grow=True)
            stored = self._fetch(conn, layer, [current.id])[0]
            self.record(feature_change(layer, UPDATE, current, stored))
        return stored

    def delete(self, layer_id: str, fid: int, scope: Scope, *, if_match: str | None = None) -> None:
        """Delete one feature; NotFound outside the scope; PreconditionFailed on a stale ETag."""
        layer = self.catalog.get(layer_id)
        with self._write() as conn:
            current = self._fetch_one(conn, layer, fid, scope)
            check_etag(current, if_match)
            conn.execute(f"DELETE FROM {q(layer.id)} WHERE {FID} = ?", (current.id,))
            gpkg.touch_contents(conn, layer.id, None, grow=True)
            self.record(feature_change(layer, DELETE, current, None))

    def bulk_load(self, layer_id: str, features: Iterable[Feature], *, replace: bool = False) -> int:
        """Check, key and load many features in one transaction, in chunks (ids kept when given); see
        embedded_load.bulk_load."""
        layer = self.catalog.get(layer_id)
        with self._write() as conn:
            count = embedded_load.bulk_load(conn, layer, features, self.catalog, replace=replace,
                                            chunk=CHUNK)
            self.record(PendingChange(layer.id, None, LOAD, before=WORLD))
        return count

    def aggregate(self, layer_id: str, query: FeatureQuery, scope: Scope,
                  group_by: tuple[str, ...], *, limit: int | None = None) -> list[tuple[tuple[Any, ...], int]]:
        """Grouped counts in one statement (rows still without their H3 cells are filled first, once)."""
        layer = self.catalog.get(layer_id)
        groups = aggregate_sql.group_expressions(layer, group_by, "sqlite", q)
        where = build_where(SQLiteDialect(layer), layer, query, scope)
        statement = aggregate_sql.statement(q(layer.id), groups, where.sql(), limit)
        with self._read() as conn:
            rows = conn.execute(statement, where.params).fetchall()
        if aggregate_sql.lacks_cells(group_by, rows):
            self._fill_h3_cells(layer)
            with self._read() as conn:
                rows = conn.execute(statement, where.params).fetchall()
        props = [None if g in aggregate_sql.BUCKETS or aggregate_sql.is_h3(g) else layer.prop(g) for g in group_by]
        return [(aggregate_sql.decode(group_by, tuple(v if p is None or v is None else from_db(p, v)
                                                      for p, v in zip(props, r[:-1], strict=True))),
                 int(r[-1])) for r in rows]

    def durations(self, layer_id: str, query: FeatureQuery, scope: Scope, start: str, end: str, *,
                  by: str | None = None, quantiles: tuple[float, ...] = (0.5,)) -> Durations:
        """Count and in-time count in one statement; each quantile read at its rank by SQLite's own sort (the
        two neighbouring values, interpolated), so no row is fetched into Python but those."""
        layer = self.catalog.get(layer_id)
        where = build_where(SQLiteDialect(layer), layer, query, scope)
        source = aggregate_sql.durations_source(layer, start, end, by, "sqlite", q(layer.id), q, where.sql())
        out: dict[float, float | None] = {}
        with self._read() as conn:
            count, in_time = conn.execute(f"SELECT count(*), coalesce(sum(ok), 0) FROM {source}",
                                          where.params).fetchone()
            for fraction in quantiles:
                if not count:
                    out[fraction] = None
                    continue
                rank = (count - 1) * fraction
                lo = int(rank)
                values = [r[0] for r in conn.execute(f"SELECT h FROM {source} ORDER BY h LIMIT 2 OFFSET {lo}",
                                                     where.params)]
                out[fraction] = aggregate_sql.interpolate(values[0], values[-1], rank - lo)
        return Durations(int(count), out, int(in_time))

    def _fill_h3_cells(self, layer: Layer, chunk: int = 20_000) -> int:
        """Compute the H3 cells of the rows that lack them (written by another program, e.g. QGIS)."""
        if not layer.h3_cells:
            return 0
        done = 0
        col = q(h3cells.COLUMN)
        while True:
            with self._write() as conn:
                rows = conn.execute(f"SELECT {FID}, {GEOM} FROM {q(layer.id)} WHERE {col} IS NULL ORDER BY {FID} "
                                    f"LIMIT ?", (chunk,)).fetchall()
                if rows:
                    lons, lats = reference_points(np.array(gpkg.decode_many([r[1] for r in rows]), dtype=object))
                    conn.executemany(f"UPDATE {q(layer.id)} SET {col} = ? WHERE {FID} = ?",
                                     zip(h3cells.cells_of_many(lons, lats), (r[0] for r in rows), strict=True))
            if not rows:
                return done
            done += len(rows)

    # -- the change log and leases ------------------------------------------------------------------------
    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Committed changes after `seq`, in order."""
        with self._read() as conn:
            return log_sql.sqlite_since(conn, seq, limit)

    def change_bounds(self) -> tuple[int, int]:
        """(oldest, latest) seq of the change log."""
        with self._read() as conn:
            return log_sql.sqlite_bounds(conn)

    def purge_changes(self, before: datetime) -> int:
        """Drop change rows older than `before` (never the newest)."""
        with self._write() as conn:
            return log_sql.sqlite_purge(conn, before)

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> None:
        """SQLite cannot notify another process: wait `timeout`, then the caller polls the log."""
        stop.wait(timeout)

    def lock(self, name: str) -> None:
        """Nothing more to take: the open write transaction (BEGIN IMMEDIATE) already excludes every other."""
        if self._tx() is None:
            raise RuntimeError("lock() outside a transaction")

    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew a job lease (a row in the file)."""
        with self._write() as conn:
            return log_sql.sqlite_acquire(conn, name, holder, seconds)

    def release_lease(self, name: str, holder: str) -> None:
        """Give up a job lease."""
        with self._write() as conn:
            log_sql.sqlite_release(conn, name, holder)

    # -- pieces -------------------------------------------------------------------------------------------
    def _fetch(self, conn: sqlite3.Connection, layer: Layer, ids: list[int]) -> list[Feature]:
        props = list(layer.properties)
        out: list[Feature] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = conn.execute(f"SELECT {select_list(props, True)} FROM {q(layer.id)} "
                                f"WHERE {FID} IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
            out += rows_to_features(rows, props)
        return out

    def _fetch_one(self, conn: sqlite3.Connection, layer: Layer, fid: int, scope: Scope) -> Feature:
        where = build_where(SQLiteDialect(layer), layer, FeatureQuery(ids=(feature_id(fid),), limit=1), scope)
        props = list(layer.properties)
        rows = conn.execute(f"SELECT {select_list(props, True)} FROM {q(layer.id)} {where.sql()}",
                            where.params).fetchall()
        if not rows:
            raise NotFound(f"no feature {fid} in collection {layer.id!r}", parameter="featureId")
        return rows_to_features(rows, props)[0]

    def _insert_row(self, conn: sqlite3.Connection, layer: Layer, fid: int | None, geometry: BaseGeometry,
                    props: dict[str, Any]) -> int:
        names = [q(p.name) for p in layer.properties] + embedded_load.derived_columns(layer)
        cur = conn.execute(
            f"INSERT INTO {q(layer.id)} ({FID}, {GEOM}, {', '.join(names)}) "
            f"VALUES ({', '.join(['?'] * (len(names) + 2))})",
            [fid, gpkg.encode(geometry), *(to_db(p, props.get(p.name)) for p in layer.properties),
             *embedded_load.derived_values(layer, geometry)])
        return int(cur.lastrowid)

    def _keyed(self, conn: sqlite3.Connection, layer: Layer, geometry: BaseGeometry,
               props: dict[str, Any]) -> dict[str, Any]:
        """The properties with township/grid set from the geometry where the layer wants it."""
        if not layer.locate_on_write:
            return props
        lon, lat = reference_point(geometry)
        where = self._locate(conn, lon, lat)
        out = {**props, TOWNSHIP_KEY: where.township_code}
        if layer.has_grid:
            out[GRID_KEY] = where.grid_code
        return out

    def _locate(self, conn: sqlite3.Connection, lon: float, lat: float) -> Location:
        return Location(self._containing(conn, TOWNSHIPS, TOWNSHIP_KEY, lon, lat),
                        self._containing(conn, GRIDS, GRID_KEY, lon, lat))

    def _containing(self, conn: sqlite3.Connection, layer_id: str, key: str, lon: float, lat: float) -> str | None:
        """The smallest code among the areas the point falls in (a shared border counts for both sides)."""
        if layer_id not in self.catalog:
            return None
        rows = conn.execute(
            f"SELECT {q(key)}, {GEOM} FROM {q(layer_id)} WHERE {FID} IN (SELECT id FROM "
            f"{q(gpkg.rtree_name(layer_id))} WHERE minx <= ?1 AND maxx >= ?1 AND miny <= ?2 AND maxy >= ?2) "
            f"AND {q(key)} IS NOT NULL ORDER BY {q(key)}", (lon, lat)).fetchall()
        for code, blob in rows:
            area = gpkg.decode(blob)
            if area is not None and shapely.intersects_xy(area, lon, lat):
                return code
        return None
