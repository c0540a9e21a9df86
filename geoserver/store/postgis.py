"""PostGISStore: features in PostgreSQL/PostGIS through psycopg 3 and a connection pool.

Connections are in autocommit mode: a read is one statement (one round trip, one snapshot); every write
runs inside an explicit transaction, so it all lands or nothing does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from geoserver.access import Scope
from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Catalog, Layer
from geoserver.changes import (
    DELETE,
    INSERT,
    LOAD,
    UPDATE,
    WORLD,
    Change,
    PendingChange,
    feature_change,
    live_properties,
)
from geoserver.crs import CRS84
from geoserver.errors import BadInput, Conflict, NotFound, StoreUnavailable
from geoserver.features import Feature, FeaturePage, FeatureQuery, check_feature
from geoserver.store import aggregate_sql, append_sql, h3cells, log_sql, migrate, postgis_mvt
from geoserver.store.base import (
    Columns,
    Durations,
    Extent,
    GeoJSONPage,
    Location,
    Store,
)
from geoserver.store.batches import reference_points
from geoserver.store.columns_sql import pg_columns
from geoserver.store.guards import check_etag, checked_at, feature_id, require_scope
from geoserver.store.postgis_accounts import PostGISAccounts
from geoserver.store.postgis_load import bulk_load
from geoserver.store.postgis_pool import RETRY_AFTER, PostgresPool
from geoserver.store.postgis_sql import COPY_TYPES, DIALECT, LOCATE_MANY, LayerSQL, decode_rows, quote
from geoserver.store.where import Where, build_where, scope_clause
from geoserver.vectortile import TileRequest

HASH_WORK_MEM = "32MB"


class PostGISStore(PostGISAccounts, Store):
    """The Store on PostgreSQL/PostGIS (schema from versioned SQL migrations)."""

    kind = "postgis"
    rows_dialect = "pg"

    def __init__(
        self, url: str, catalog: Catalog, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 5.0
    ) -> None:
        super().__init__(catalog)
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self._pool: PostgresPool | None = None
        self._sql: dict[str, LayerSQL] = {}
        self._listener: psycopg.Connection | None = None
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailable(f"not a PostgreSQL URL: {exc}") from None
        host = info.get("host") or "localhost"
        self.where = f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"

    # -- life cycle -------------------------------------------------------------------------------------
    def open(self) -> None:
        """Check the server answers (a clear error if not), then open the pool (see postgis_pool)."""
        if self._pool is not None:
            return
        pool = PostgresPool(self.url, self.where, min_size=self.min_size, max_size=self.max_size,
                            connect_timeout=self.connect_timeout, wait_timeout=self.connect_timeout * 2,
                            configure=_configure)
        pool.open()
        self._pool = pool

    def close(self) -> None:
        """Close the pool."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def initialize(self) -> None:
        """Apply pending migrations, then check the tables match the catalog."""
        with self._connection() as conn:
            migrate.upgrade(conn)
            drift = migrate.schema_drift(conn, self.catalog)
            if not drift:
                for layer in self.catalog:
                    self._fill_h3_cells(conn, layer, self._layer(layer.id)[1])
        if drift:
            raise StoreUnavailable(
                f"the PostGIS schema at {self.where} does not match the layer catalog: {'; '.join(drift)}"
                " (write a new migration in geoserver/store/migrations)"
            )

    def health(self) -> dict[str, Any]:
        """PostGIS and schema versions, the pool's figures; StoreUnavailable (at once) when unreachable."""
        with self._connection() as conn:
            version = migrate.schema_version(conn)
            if version is None:
                raise StoreUnavailable(f"the database {self.where} has no onemap schema; {migrate.UPGRADE_HINT}")
            try:
                postgis = conn.execute("SELECT postgis_lib_version()").fetchone()
            except pg_errors.UndefinedFunction:
                raise StoreUnavailable(f"PostGIS is not installed in {self.where}; {migrate.UPGRADE_HINT}") from None
        return {"store": self.kind, "database": self.where,
                "postgis_version": postgis[0] if postgis else None, "schema_version": version,
                "connections": self._pool.stats() if self._pool is not None else None}

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; database trouble comes out as StoreUnavailable / BadInput / Conflict."""
        tx = self._tx()
        if tx is not None:  # inside a transaction: its connection (errors are translated where it began)
            yield tx.conn
            return
        if self._pool is None:
            raise StoreUnavailable("the PostGIS store is not open")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (pg_errors.UndefinedTable, pg_errors.UndefinedColumn) as exc:
            raise StoreUnavailable(
                f"the database {self.where} lacks the onemap schema ({_first_line(exc)}); {migrate.UPGRADE_HINT}"
            ) from None
        except pg_errors.UniqueViolation as exc:
            raise Conflict(_detail(exc), parameter="id") from None
        except psycopg.DataError as exc:
            raise BadInput(_detail(exc)) from None
        except psycopg.OperationalError as exc:  # a lost connection, a cancelled statement: worth a retry
            raise StoreUnavailable(f"PostgreSQL at {self.where}: {_first_line(exc)}",
                                   retry_after=RETRY_AFTER) from None

    @contextlib.contextmanager
    def _write(self, actor: str | None = None) -> Iterator[psycopg.Connection]:
        """The open transaction's connection, or a new transaction that appends its change rows last."""
        if self._tx() is not None:
            with self._connection() as conn:
                yield conn
            return
        with self._connection() as conn, conn.transaction(), self._joined(conn, actor) as tx:
            yield conn
            log_sql.pg_append(conn, tx.pending, actor)
        self._after_commit(tx)

    def _layer(self, layer_id: str) -> tuple[Layer, LayerSQL]:
        layer = self.catalog.get(layer_id)
        sql = self._sql.get(layer_id)
        if sql is None:
            sql = self._sql[layer_id] = LayerSQL(layer)
        return layer, sql

    def _reading(self) -> Any:
        """A read of the domain tables (joins the open transaction)."""
        return self._connection()

    # -- reads ------------------------------------------------------------------------------------------
    def query(self, layer_id: str, query: FeatureQuery, scope: Scope) -> FeaturePage:
        """A page of features and the exact number matched, in one statement."""
        layer, sql = self._layer(layer_id)
        names = sql.selected(query)
        where = build_where(DIALECT, layer, query, scope)
        statement, params = sql.page(query, where, names)
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            rows = cur.execute(statement, params).fetchall()
        matched = int(rows[0][0]) if rows else 0
        present = [r for r in rows if r[1] is not None]
        return FeaturePage(decode_rows(present, names, start=1), matched)

    def query_geojson(self, layer_id: str, query: FeatureQuery, scope: Scope, crs: str = CRS84) -> GeoJSONPage:
        """The page as GeoJSON written by PostgreSQL (ST_AsGeoJSON, to_json), the count in the same statement.

        The scope is in the statement's WHERE like every read's. Other output CRSs than CRS84 take the
        Python path (pyproj's axis order and transforms, identical to a single item's).
        """
        if crs != CRS84:
            return super().query_geojson(layer_id, query, scope, crs)
        layer, sql = self._layer(layer_id)
        names = sql.selected(query)
        where = build_where(DIALECT, layer, query, scope)
        statement, params = sql.geojson_page(query, where, names)
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            matched, returned, body = cur.execute(statement, params).fetchone()
        return GeoJSONPage(bytes(body), int(returned), int(matched))

    def get(self, layer_id: str, fid: int, scope: Scope, *, for_update: bool = False,
            with_geometry: bool = True) -> Feature:
        """One feature in scope, or NotFound (the same whether missing or out of scope); locked with
        `for_update` until the open transaction ends."""
        layer, sql = self._layer(layer_id)
        with self._connection() as conn:
            return self._fetch(conn, layer, sql, fid, scope, lock=for_update and self._tx() is not None,
                               with_geometry=with_geometry)

    def stored_keys(self, layer_id: str, column: str, values: list[str], within: tuple[str, int]) -> set[str]:
        """One `= ANY(array)` probe of the index."""
        layer, sql = self._layer(layer_id)
        if not values:
            return set()
        with self._connection() as conn:
            return set(append_sql.pg_stored_keys(conn, layer, sql, column, values, within))

    def columns(self, layer_id: str, query: FeatureQuery, scope: Scope, names: tuple[str, ...]) -> Columns:
        """Point features as columns, in one statement."""
        layer, sql = self._layer(layer_id)
        with self._connection() as conn:
            return Columns(*pg_columns(conn, layer, sql, query, scope, names))

    def _fetch(
        self, conn: psycopg.Connection, layer: Layer, sql: LayerSQL, fid: Any, scope: Scope, *, lock: bool,
        with_geometry: bool = True,
    ) -> Feature:
        fid = feature_id(fid)
        where = Where(DIALECT)
        where.add("fid = %s", [fid])
        sc = scope_clause(DIALECT, scope)
        if sc:
            where.add(*sc)
        select = sql.select_all if with_geometry else f"fid, NULL::bytea, {sql.columns}"
        statement = f"SELECT {select} FROM {sql.table} {where.sql()}" + (" FOR UPDATE" if lock else "")
        with conn.cursor(binary=True) as cur:
            row = cur.execute(statement, where.params).fetchone()
        if row is None:
            raise NotFound(f"no feature {fid} in collection {layer.id!r}", parameter="featureId")
        return decode_rows([row], sql.names)[0]

    def extent(self, layer_id: str, scope: Scope) -> Extent:
        """Bounding box, time interval and count within the scope."""
        layer, sql = self._layer(layer_id)
        where = Where(DIALECT)
        sc = scope_clause(DIALECT, scope)
        if sc:
            where.add(*sc)
        statement, params = sql.extent(where)
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            x0, y0, x1, y1, t0, t1, n = cur.execute(statement, params).fetchone()
        if not n:
            return Extent(None, None, 0)
        interval = (t0, t1) if t0 is not None or t1 is not None else None
        return Extent((x0, y0, x1, y1), interval, int(n))

    def locate(self, lon: float, lat: float) -> Location:
        """The township and grid containing the point (GiST-indexed ST_Intersects)."""
        with self._connection() as conn:
            township, grid = _locate_many(conn, [float(lon)], [float(lat)])[0]
        return Location(township, grid)

    def tile(self, layer_id: str, request: TileRequest, scope: Scope) -> bytes:
        """One MVT layer built by PostGIS (ST_AsMVT) in one statement, within the scope."""
        layer, _ = self._layer(layer_id)
        with self._connection() as conn:
            return postgis_mvt.render(conn, layer, request, scope)

    async def open_async(self) -> None:
        """A pool of connections on the running event loop, for tile_async."""
        if self._pool is not None:
            await self._pool.open_async(SESSION_SETTINGS)

    async def close_async(self) -> None:
        """Close the event loop's pool."""
        if self._pool is not None:
            await self._pool.close_async()

    def async_tiles(self) -> bool:
        """True when tile_async can run on this event loop now."""
        return self._pool is not None and self._pool.async_ready()

    async def tile_async(self, layer_id: str, request: TileRequest, scope: Scope) -> bytes:
        """`tile` on the event loop's own connections: the same statement, no worker thread."""
        layer, _ = self._layer(layer_id)
        sql, params = postgis_mvt.tile_sql(layer, request, scope)
        assert self._pool is not None
        value = await self._pool.fetch_value(postgis_mvt.numbered(sql), params)
        return bytes(value) if value else b""

    def iter_features(self, layer_id: str, scope: Scope, batch_size: int = 5000) -> Iterator[Feature]:
        """Every feature in scope in id order, through a server-side cursor."""
        layer, sql = self._layer(layer_id)
        where = Where(DIALECT)
        sc = scope_clause(DIALECT, scope)
        if sc:
            where.add(*sc)
        statement = f"SELECT {sql.select_all} FROM {sql.table} {where.sql()} ORDER BY fid"
        with self._connection() as conn, conn.transaction():
            with conn.cursor(name="onemap_iter_features", binary=True) as cur:
                cur.itersize = batch_size
                cur.execute(statement, where.params)
                while rows := cur.fetchmany(batch_size):
                    yield from decode_rows(rows, sql.names)

    # -- writes -----------------------------------------------------------------------------------------
    def insert(self, layer_id: str, features: list[Feature], scope: Scope) -> list[Feature]:
        """Insert features in one transaction with new ids (any given id is ignored); returns them as stored."""
        layer, sql = self._layer(layer_id)
        checked = [checked_at(layer, f, i, len(features)) for i, f in enumerate(features)]
        if not checked:
            return []
        with self._write() as conn:
            self._key(conn, layer, checked, scope)
            cursors = []
            with conn.pipeline():  # every INSERT sent at once, one round trip
                for f in checked:
                    cursors.append(conn.cursor(binary=True))
                    cursors[-1].execute(sql.insert, sql.values(f))
            stored = decode_rows([cur.fetchone() for cur in cursors], sql.names)
            for f in stored:
                self.record(feature_change(layer, INSERT, None, f))
        return stored

    def append(self, layer_id: str, features: list[Feature], scope: Scope, *, unique: tuple[str, ...],
               summary: dict[str, Any] | None = None, grid: str | None = None,
               fresh: bool = False) -> list[int | None]:
        """One INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING; summary rows in the change log."""
        layer, sql = self._layer(layer_id)
        if not features:
            return []
        with self._write() as conn:
            batch, new = append_sql.pg_append(conn, layer, sql, features, scope, unique, grid, fresh)
            for change in append_sql.summary_changes(layer, batch, new, summary or {}):
                self.record(change)
        return new

    def update(
        self, layer_id: str, fid: int, feature: Feature, scope: Scope, *,
        partial: bool = False, if_match: str | None = None,
    ) -> Feature:
        """Replace or patch one feature under a row lock; the ETag is compared with the locked row."""
        layer, sql = self._layer(layer_id)
        change = check_feature(layer, feature, partial=partial)
        with self._write() as conn:
            current = self._fetch(conn, layer, sql, fid, scope, lock=True)
            check_etag(current, if_match)
            if partial:
                merged = Feature(current.id, change.geometry or current.geometry,
                                 {**current.properties, **change.properties})
                change = check_feature(layer, merged)
            new = Feature(current.id, change.geometry, change.properties)
            self._key(conn, layer, [new], scope)
            with conn.cursor(binary=True) as cur:
                row = cur.execute(sql.update, [*sql.values(new), current.id]).fetchone()
            stored = decode_rows([row], sql.names)[0]
            self.record(feature_change(layer, UPDATE, current, stored))
        return stored

    def patch_line(self, layer_id: str, fid: int, properties: dict[str, Any], *,
                   last: tuple[tuple[float, float], tuple[float, float]] | None = None,
                   coords: np.ndarray | None = None) -> Feature | None:
        """One UPDATE: the properties set and, with `coords`, the line's last vertex replaced by them in SQL
        (`ST_MakeLine` of the line less its last vertex and the new points: a line then points, so no vertex is
        merged away), guarded by the expected last two vertices; the old and new bboxes come back for the
        change log, the line never leaves the database."""
        layer, sql = self._layer(layer_id)
        change = check_feature(layer, Feature(fid, None, properties), partial=True)
        names = [layer.prop(k).name for k in change.properties]
        sets = [f"{quote(n)} = %s" for n in names]
        params: list[Any] = [change.properties[n] for n in names]
        guard = ""
        guard_params: list[Any] = []
        if coords is not None:
            if last is None:
                raise ValueError("patch_line: coords need the line's expected last two vertices")
            xy = np.asarray(coords, dtype=float)
            g = "p.geom"
            head = (f"CASE WHEN ST_NPoints({g}) > 2 THEN ST_RemovePoint({g}, ST_NPoints({g}) - 1)"
                    f" ELSE ST_StartPoint({g}) END")
            sets.insert(0, f"geom = ST_MakeLine(ARRAY[{head}] || ARRAY(SELECT ST_SetSRID(ST_MakePoint(u.x, u.y), 4326)"
                           " FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, i) ORDER BY u.i))")
            params = [xy[:, 0].tolist(), xy[:, 1].tolist(), *params]
            guard = (" AND ST_NPoints(o.geom) >= 2 AND ST_X(ST_PointN(o.geom, -2)) = %s AND ST_Y(ST_PointN(o.geom, -2)) = %s"
                     " AND ST_X(ST_PointN(o.geom, -1)) = %s AND ST_Y(ST_PointN(o.geom, -1)) = %s")
            guard_params = [float(last[0][0]), float(last[0][1]), float(last[1][0]), float(last[1][1])]
        if not sets:
            raise ValueError("patch_line: nothing to write")
        box = "ST_XMin({0}), ST_YMin({0}), ST_XMax({0}), ST_YMax({0})"
        statement = (f"UPDATE {sql.table} p SET {', '.join(sets)} FROM {sql.table} o"
                     f" WHERE o.fid = p.fid AND p.fid = %s{guard}"
                     f" RETURNING {box.format('o.geom')}, {box.format('p.geom')}, p.fid, NULL::bytea, "
                     + ", ".join(f"p.{quote(n)}" for n in sql.names))
        with self._write() as conn, conn.cursor(binary=True) as cur:
            row = cur.execute(statement, [*params, feature_id(fid), *guard_params]).fetchone()
            if row is None:
                return None
            stored = decode_rows([row], sql.names, start=8)[0]
            township = stored.properties.get(TOWNSHIP_KEY)
            self.record(PendingChange(layer.id, int(stored.id), UPDATE, township_before=township,
                                      township_after=township, before=tuple(map(float, row[0:4])),
                                      after=tuple(map(float, row[4:8])),
                                      properties=live_properties(layer, stored.properties)))
        return stored

    def update_rows_by_id(self, table_id: str, values: dict[int, dict[str, Any]]) -> None:
        """Set each row's own values: the rows that set the same columns in one UPDATE … FROM unnest(typed
        arrays) (one statement, not one per row); a set of columns with a JSON one, or a single row, as before."""
        if not values:
            return
        table = self.catalog.table(table_id)
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for rid, row in values.items():
            if row:
                groups.setdefault(tuple(row), []).append([*row.values(), int(rid)])
        with self._write() as conn:
            for names, params in groups.items():
                types = [COPY_TYPES.get(table.column(n).type) for n in names]
                if len(params) == 1 or None in types:
                    super().update_rows_by_id(table_id, {p[-1]: dict(zip(names, p[:-1], strict=True))
                                                         for p in params})
                    continue
                arrays = ", ".join(f"%s::{t}[]" for t in types)
                alias = ", ".join(f"onemap_v{i}" for i in range(len(names)))
                sets = ", ".join(f"{quote(table.column(n).name)} = v.onemap_v{i}" for i, n in enumerate(names))
                columns = [[None if p[i] is None else float(p[i]) if t == "float8" else p[i] for p in params]
                           for i, t in enumerate(types)]
                conn.execute(f"UPDATE {quote(table.id)} SET {sets} FROM unnest({arrays}, %s::int8[])"
                             f" AS v({alias}, onemap_id) WHERE id = v.onemap_id", [*columns, [p[-1] for p in params]])

    def update_many(self, layer_id: str, patches: Sequence[Feature], scope: Scope) -> list[Feature]:
        """Patch many features set-based: the rows read and locked in one statement (in id order, so two such
        batches wait for each other instead of deadlocking), the UPDATEs pipelined (one round trip); a feature
        is located again only if its patch moves it."""
        layer, sql = self._layer(layer_id)
        if not patches:
            return []
        changes = [(feature_id(f.id), check_feature(layer, f, partial=True)) for f in patches]
        if len({fid for fid, _ in changes}) < len(changes):
            raise ValueError("update_many: one patch per feature")
        with self._write() as conn:
            where = Where(DIALECT)
            where.add("fid = ANY(%s)", [sorted({fid for fid, _ in changes})])
            sc = scope_clause(DIALECT, scope)
            if sc:
                where.add(*sc)
            statement = f"SELECT {sql.select_all} FROM {sql.table} {where.sql()} ORDER BY fid FOR UPDATE"
            with conn.cursor(binary=True) as cur:
                current = {f.id: f for f in decode_rows(cur.execute(statement, where.params).fetchall(), sql.names)}
            news: list[Feature] = []
            for fid, change in changes:
                if fid not in current:
                    raise NotFound(f"no feature {fid} in collection {layer.id!r}", parameter="featureId")
                before = current[fid]
                merged = check_feature(layer, Feature(fid, change.geometry or before.geometry,
                                                      {**before.properties, **change.properties}))
                news.append(Feature(fid, merged.geometry, merged.properties))
            moved = [n for n, (_, change) in zip(news, changes, strict=True) if change.geometry is not None]
            if moved:
                self._key(conn, layer, moved, scope)
            for n in news:
                require_scope(layer, scope, n.properties)
            # A patch that does not move its feature sets only its own columns (the geometry and the cells
            # derived from it stay): one statement per set of columns, each pipelined by psycopg.
            groups: dict[tuple[str, ...] | None, list[list[Any]]] = {}
            for n, (_, change) in zip(news, changes, strict=True):
                if change.geometry is not None or not change.properties:
                    groups.setdefault(None, []).append([*sql.values(n), n.id])
                else:
                    names = tuple(layer.prop(k).name for k in change.properties)
                    groups.setdefault(names, []).append([*(n.properties.get(k) for k in names), n.id])
            by_id: dict[int, Feature] = {}
            for names, params in groups.items():
                if names is not None and len(params) > 1 and all(
                        layer.prop(k).type in COPY_TYPES for k in names):
                    # One UPDATE … FROM unnest(arrays) for the whole group: one statement, not one per row.
                    with conn.cursor(binary=True) as cur:
                        rows = cur.execute(_update_from_arrays(layer, sql, names),
                                           _arrays(layer, names, params)).fetchall()
                    by_id.update((f.id, f) for f in decode_rows(rows, sql.names))
                    continue
                statement = sql.update if names is None else (
                    f"UPDATE {sql.table} SET {', '.join(f'{quote(k)} = %s' for k in names)} WHERE fid = %s"
                    f" RETURNING {sql.select_all}")
                with conn.cursor(binary=True) as cur:
                    cur.executemany(statement, params, returning=True)
                    rows = []
                    while True:
                        rows.append(cur.fetchone())
                        if not cur.nextset():
                            break
                by_id.update((f.id, f) for f in decode_rows(rows, sql.names))
            stored = [by_id[fid] for fid, _ in changes]
            for (fid, _), after in zip(changes, stored, strict=True):
                self.record(feature_change(layer, UPDATE, current[fid], after))
        return stored

    def delete(self, layer_id: str, fid: int, scope: Scope, *, if_match: str | None = None) -> None:
        """Delete one feature in scope (NotFound otherwise), checking the ETag under a row lock."""
        layer, sql = self._layer(layer_id)
        with self._write() as conn:
            current = self._fetch(conn, layer, sql, fid, scope, lock=True)
            check_etag(current, if_match)
            conn.execute(f"DELETE FROM {sql.table} WHERE fid = %s", [current.id])
            self.record(feature_change(layer, DELETE, current, None))

    def _key(self, conn: psycopg.Connection, layer: Layer, features: list[Feature], scope: Scope) -> None:
        """Set township/grid by spatial join (where the layer wants it); Forbidden outside the scope."""
        if layer.locate_on_write:
            lons, lats = reference_points(np.array([f.geometry for f in features], dtype=object))
            located = _locate_many(conn, lons.tolist(), lats.tolist())
            for f, (township, grid) in zip(features, located, strict=True):
                f.properties[TOWNSHIP_KEY] = township
                if layer.has_grid:
                    f.properties[GRID_KEY] = grid
        for f in features:
            require_scope(layer, scope, f.properties)

    def bulk_load(self, layer_id: str, features: Iterable[Feature], *, replace: bool = False) -> int:
        """COPY many features in one transaction, streamed in chunks (see postgis_load)."""
        layer, sql = self._layer(layer_id)
        with self._write() as conn:
            count = bulk_load(conn, layer, sql, features, replace=replace)
            self.record(PendingChange(layer.id, None, LOAD, before=WORLD))
        return count

    def aggregate(self, layer_id: str, query: FeatureQuery, scope: Scope,
                  group_by: tuple[str, ...], *, limit: int | None = None) -> list[tuple[tuple[Any, ...], int]]:
        """Grouped counts in one statement (rows still without their H3 cells are filled first, once)."""
        layer, sql = self._layer(layer_id)
        groups = aggregate_sql.group_expressions(layer, group_by, "pg", quote)
        where = build_where(DIALECT, layer, query, scope)
        statement = aggregate_sql.statement(sql.table, groups, where.sql(), limit)
        cells = any(aggregate_sql.is_h3(g) for g in group_by)
        with self._connection() as conn:
            rows = self._grouped(conn, statement, where.params, cells)
            if aggregate_sql.lacks_cells(group_by, rows):
                self._fill_h3_cells(conn, layer, sql)
                rows = self._grouped(conn, statement, where.params, cells)
        return [(aggregate_sql.decode(group_by, tuple(r[:-1])), int(r[-1])) for r in rows]

    @staticmethod
    def _grouped(conn: psycopg.Connection, statement: str, params: list[Any], cells: bool) -> list[Any]:
        """The rows of a GROUP BY; by cell with room to hash: at resolutions without statistics on their cell
        expression (migration 0017 keeps them for 6-10), sampled statistics overcount distinct cells (165k for
        9.6k at 10^6 events), and with 4 MB PostgreSQL sorts on disk instead (measured 1.5 s vs 1.1 s)."""
        if not cells:
            return conn.execute(statement, params).fetchall()
        with conn.transaction():
            conn.execute(f"SET LOCAL work_mem = '{HASH_WORK_MEM}'")
            return conn.execute(statement, params).fetchall()

    def _fill_h3_cells(self, conn: psycopg.Connection, layer: Layer, sql: LayerSQL, chunk: int = 20_000) -> int:
        """Compute the H3 cells of the rows that lack them (written by another program, or before 0008)."""
        if not layer.h3_cells:
            return 0
        done = 0
        while True:
            with conn.cursor(binary=True) as cur:
                rows = cur.execute(f"SELECT fid, ST_AsBinary(geom) FROM {sql.table} WHERE {quote(h3cells.COLUMN)} "
                                   f"IS NULL ORDER BY fid LIMIT %s", [chunk]).fetchall()
            if not rows:
                return done
            lons, lats = reference_points(shapely.from_wkb([r[1] for r in rows]))
            conn.execute(f"UPDATE {sql.table} t SET {quote(h3cells.COLUMN)} = v.c FROM unnest(%s::bigint[], "
                         f"%s::bytea[]) AS v(fid, c) WHERE t.fid = v.fid",
                         [[r[0] for r in rows], h3cells.cells_of_many(lons, lats)])
            done += len(rows)

    def durations(self, layer_id: str, query: FeatureQuery, scope: Scope, start: str, end: str, *,
                  by: str | None = None, quantiles: tuple[float, ...] = (0.5,)) -> Durations:
        """Count, in-time count and percentile_cont of the hours, in one statement."""
        layer, sql = self._layer(layer_id)
        where = build_where(DIALECT, layer, query, scope)
        source = aggregate_sql.durations_source(layer, start, end, by, "pg", sql.table, quote, where.sql())
        with self._connection() as conn:
            count, in_time, values = conn.execute(aggregate_sql.pg_durations_statement(source, quantiles),
                                                  where.params).fetchone()
        values = values or [None] * len(quantiles)
        return Durations(int(count), dict(zip(quantiles, values, strict=False)), int(in_time))

    # -- the change log and leases ------------------------------------------------------------------------
    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Committed changes after `seq`, in order."""
        with self._connection() as conn:
            return log_sql.pg_since(conn, seq, limit)

    def change_bounds(self) -> tuple[int, int]:
        """(oldest, latest) seq of the change log."""
        with self._connection() as conn:
            return log_sql.pg_bounds(conn)

    def purge_changes(self, before: datetime) -> int:
        """Drop change rows older than `before` (never the newest)."""
        with self._write() as conn:
            return log_sql.pg_purge(conn, before)

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> None:
        """Wait for a NOTIFY on the change channel (a connection of its own, LISTENing), or the timeout."""
        conn = self._listener
        if conn is None or conn.closed:
            self._listener = None
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout)),
                                   application_name="onemap-listen")
            conn.execute(f"LISTEN {log_sql.CHANNEL}")
            self._listener = conn
            return  # (re)connected: the caller reads what was missed meanwhile
        try:
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            conn.close()
            self._listener = None
            raise

    def lock(self, name: str) -> None:
        """A transaction-level advisory lock on the name's hash (two-int keys: apart from the log's lock)."""
        if self._tx() is None:
            raise RuntimeError("lock() outside a transaction")
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [NAMED_LOCKS, name])

    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew a job lease."""
        with self._write() as conn:
            return log_sql.pg_acquire(conn, name, holder, seconds)

    def release_lease(self, name: str, holder: str) -> None:
        """Give up a job lease."""
        with self._write() as conn:
            log_sql.pg_release(conn, name, holder)


NAMED_LOCKS = 0x6F6D  # the first half of Store.lock keys


# Session settings of every pooled connection. UTC, so timestamps come back as aware UTC datetimes. No JIT:
# PostGIS prices its functions high (ST_Intersects costs 10000), so ordinary page queries pass jit_above_cost
# and then spend ~0.3 s compiling for a query that runs in milliseconds. Custom plans always: psycopg prepares a
# statement run five times, and a generic plan cannot know how small the bbox is (measured 20-40% slower). The
# PostGIS library loaded into the backend now, not by the first request that calls a PostGIS function (12-33
# ms) -- only where PostGIS is installed: a database without it must still open, so the store can say to run
# `onemap db upgrade` (the function is looked up when the block runs, not when it is parsed).
SESSION_SETTINGS = (
    "SET TimeZone TO 'UTC'",
    "SET jit TO off",
    "SET plan_cache_mode TO force_custom_plan",
    "DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') THEN "
    "PERFORM postgis_lib_version(); END IF; END$$",
)


def _configure(conn: psycopg.Connection) -> None:
    """The session settings on a new connection of the pool."""
    for statement in SESSION_SETTINGS:
        conn.execute(statement)


def _locate_many(conn: psycopg.Connection, lons: list[float], lats: list[float]) -> list[tuple[Any, Any]]:
    """(township_code, grid_code) of each point, in one statement."""
    return [tuple(r) for r in conn.execute(LOCATE_MANY, [lons, lats]).fetchall()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _detail(exc: psycopg.Error) -> str:
    diag = exc.diag
    return "; ".join(p for p in (diag.message_primary, diag.message_detail) if p) or _first_line(exc)


def _update_from_arrays(layer: Layer, sql: LayerSQL, names: tuple[str, ...]) -> str:
    """An UPDATE of `names` for many rows at once: one typed array per column and one of the ids, unnested."""
    arrays = ", ".join(f"%s::{COPY_TYPES[layer.prop(k).type]}[]" for k in names)
    alias = ", ".join(f"onemap_v{i}" for i in range(len(names)))
    sets = ", ".join(f"{quote(k)} = v.onemap_v{i}" for i, k in enumerate(names))
    return (f"UPDATE {sql.table} SET {sets} FROM unnest({arrays}, %s::int8[]) AS v({alias}, onemap_fid)"
            f" WHERE fid = v.onemap_fid RETURNING {sql.select_all}")


def _arrays(layer: Layer, names: tuple[str, ...], params: list[list[Any]]) -> list[list[Any]]:
    """The rows' values column by column (numbers as float, so that a column mixing 1 and 1.5 is one type)."""
    out: list[list[Any]] = []
    for i, k in enumerate(names):
        column = [row[i] for row in params]
        if layer.prop(k).type == "number":
            column = [None if v is None else float(v) for v in column]
        out.append(column)
    out.append([row[-1] for row in params])
    return out
