"""The Store interface: the one door to persisted features. Two implementations pass one contract suite."""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import shapely

from geoserver.access import Scope
from geoserver.catalog import Catalog
from geoserver.changes import Change, ChangeFeed, PendingChange
from geoserver.crs import CRS84
from geoserver.features import Feature, FeaturePage, FeatureQuery
from geoserver.geojson import to_geojson
from geoserver.store.records import (  # noqa: F401 -- the records are part of the interface
    AccountState,
    ApiKeyRecord,
    Columns,
    Durations,
    Extent,
    GeoJSONPage,
    IdempotencyRecord,
    Location,
    LoginFailures,
    UserRecord,
)
from geoserver.store.rows_sql import RowsSQL
from geoserver.vectortile import TileRequest


class Store(abc.ABC):
    """Persisted features of the layers of one catalog.

    Every read takes a Scope and applies it in the query. Every write is one transaction: it all lands or
    nothing does. Geometries are lon/lat (EPSG:4326); layers with `locate_on_write` get `township_code`
    and `grid_code` from the geometry by spatial join against the `townships` and `grids` layers.
    """

    kind: str = "abstract"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        # This process's reader of the change log: caches and the live stream subscribe to it. Writers in
        # this process deliver their own changes at once after commit; start() also reads other processes'.
        self.changes = ChangeFeed(self)
        self._tx_local = threading.local()
        self._row_statements: dict[str, RowsSQL] = {}

    # -- life cycle -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def open(self) -> None:
        """Connect (pool, file handle). Raises StoreUnavailable with the reason if it cannot."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def initialize(self) -> None:
        """Create or upgrade the schema for every catalog layer (idempotent)."""

    @abc.abstractmethod
    def health(self) -> dict[str, Any]:
        """A small report that proves the store answers (raises StoreUnavailable if not)."""

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def query(self, layer_id: str, query: FeatureQuery, scope: Scope) -> FeaturePage:
        """Features of a layer matching the query within the scope, and the exact number matched.

        Args:
            layer_id: a catalog layer id.
            query: bbox / datetime / CQL2-JSON filter / properties / sortby / limit+offset.
            scope: the townships the caller may see; applied inside the query.

        Returns:
            The page, ordered by `sortby` then by id, and `number_matched` counted in the same scope.
        """

    def query_geojson(self, layer_id: str, query: FeatureQuery, scope: Scope, crs: str = CRS84) -> GeoJSONPage:
        """The page of `query` as GeoJSON Features in `crs`, encoded, with the exact number matched.

        Exactly what `query` returns, put through `to_geojson` and orjson; a store that can let its database
        write the JSON overrides this (PostGIS), answering the same bytes' meaning.
        """
        page = self.query(layer_id, query, scope)
        encoded = orjson.dumps([to_geojson(f, crs) for f in page.features])
        return GeoJSONPage(encoded[1:-1], len(page.features), page.number_matched)

    @abc.abstractmethod
    def stored_keys(self, layer_id: str, column: str, values: list[str], within: tuple[str, int]) -> set[str]:
        """Which of `values` the text `column` holds in the rows whose integer column `within[0]` is
        `within[1]` (an index on both makes it one probe per value): what an append would find stored."""

    @abc.abstractmethod
    def get(self, layer_id: str, fid: int, scope: Scope, *, for_update: bool = False,
            with_geometry: bool = True) -> Feature:
        """One feature; NotFound if it does not exist *or* lies outside the scope.

        With `for_update` (inside a transaction) the row stays locked until the transaction ends, so
        writers of one feature take turns (the GeoPackage's write transaction already excludes the others).
        Without `with_geometry` the feature comes back with geometry None (a long line is not read).
        """

    @abc.abstractmethod
    def columns(self, layer_id: str, query: FeatureQuery, scope: Scope, names: tuple[str, ...]) -> Columns:
        """Every point feature a query matches within the scope, as columns, in the query's order.

        Args:
            layer_id: a catalog layer id (a point layer).
            query: filter / datetime / bbox / sortby; limit and offset are ignored (all rows come back).
            scope: the townships the caller may see; applied inside the query.
            names: the properties to read.

        Returns:
            Ids, lon and lat arrays and one list per property (datetimes as float64 epoch seconds): for
            reading thousands of fixes fast.
        """

    @abc.abstractmethod
    def extent(self, layer_id: str, scope: Scope) -> Extent:
        """The extent and count of what the scope sees of a layer."""

    @abc.abstractmethod
    def tile(self, layer_id: str, request: TileRequest, scope: Scope) -> bytes:
        """One layer of one Mapbox Vector Tile, built inside the store, within the scope.

        Args:
            layer_id: a catalog layer id; the MVT layer is named after it.
            request: tile bounds, zoom, extent, buffer, properties to keep, simplification, clustering.
            scope: the townships the caller may see; applied inside the query.

        Returns:
            The encoded tile with that one layer, or b'' when no feature falls in it.
        """

    # Tiles on the event loop (PostGIS): an uncached tile built without a worker thread. Stores without it keep
    # the defaults and their tiles are built by `tile` in the thread pool.
    async def open_async(self) -> None:
        """Open what tile_async needs on the running event loop (nothing by default)."""
        return None

    async def close_async(self) -> None:
        """Close what open_async opened."""
        return None

    def async_tiles(self) -> bool:
        """True when tile_async may be awaited on this event loop now."""
        return False

    async def tile_async(self, layer_id: str, request: TileRequest, scope: Scope) -> bytes:
        """`tile`, awaited on the event loop (only when async_tiles() is True)."""
        raise NotImplementedError

    @abc.abstractmethod
    def locate(self, lon: float, lat: float) -> Location:
        """The township and grid containing a lon/lat point."""

    # -- writes -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def insert(self, layer_id: str, features: list[Feature], scope: Scope) -> list[Feature]:
        """Insert features in one transaction; returns them as stored (ids, township/grid filled).

        Raises BadInput for an invalid feature (nothing written) and NotFound/Forbidden if a feature falls
        outside the scope.
        """

    @abc.abstractmethod
    def append(self, layer_id: str, features: list[Feature], scope: Scope, *, unique: tuple[str, ...],
               summary: dict[str, Any] | None = None, grid: str | None = None,
               fresh: bool = False) -> list[int | None]:
        """Insert many features in one set-based write, skipping those whose `unique` key is stored already.

        Args:
            layer_id: a catalog layer id with a unique index on the `unique` columns.
            features: checked like inserts; township/grid located where the layer wants it.
            scope: Forbidden (nothing written) if a new feature falls outside it.
            unique: the columns of the key; a feature repeating a stored key (or an earlier one of the
                batch) is not written.
            summary: properties for the change log, which gets one summary row per township of the new
                features (no feature id, their bbox and count), not one row per feature.
            grid: the code of the grid most features fall in (a patrol's): a point strictly inside it takes
                that grid and its township with one containment test instead of two spatial lookups; a point
                on its border or outside it is located as usual (so the codes are the same either way).
            fresh: the caller found none of the keys stored (and holds what serialises their writers): PostGIS
                then COPYs a batch lying strictly inside `grid` straight into the table, under a savepoint
                that falls back to the usual statement should a key be stored after all. Same result.

        Returns:
            For each feature, its new id if it was written, None if not.
        """

    @abc.abstractmethod
    def update(
        self, layer_id: str, fid: int, feature: Feature, scope: Scope, *,
        partial: bool = False, if_match: str | None = None,
    ) -> Feature:
        """Replace (or with `partial`, patch) one feature atomically.

        Raises NotFound outside the scope, PreconditionFailed if `if_match` is not the current ETag.
        """

    def patch_line(self, layer_id: str, fid: int, properties: dict[str, Any], *,
                   last: tuple[tuple[float, float], tuple[float, float]] | None = None,
                   coords: np.ndarray | None = None) -> Feature | None:
        """Patch properties of one line feature and, with `coords`, replace the line's last vertex by them,
        without the caller reading or sending the line (a patrol's track growing batch by batch).

        The caller has checked who may write (no scope here) and holds the row (`get(for_update=True)`).
        `last` is what the caller believes are the line's last two vertices: when they are not (nothing is
        written), None is returned. The first vertex stays, so the feature is located the same. One update
        change is recorded. Returns the feature as stored without its geometry.

        This default reads and writes the whole line (the GeoPackage); PostGIS does it in one UPDATE.
        """
        current = self.get(layer_id, fid, Scope.everything(), for_update=True)
        geometry = None
        if coords is not None:
            xy = np.asarray(current.geometry.coords) if current.geometry is not None else np.zeros((0, 2))
            if len(xy) < 2 or last is None or (xy[-2:, :2] != np.asarray(last, dtype=float)).any():
                return None
            geometry = shapely.linestrings(np.concatenate([xy[:-1, :2], np.asarray(coords, dtype=float)]))
        stored = self.update(layer_id, fid, Feature(fid, geometry, properties), Scope.everything(), partial=True)
        return Feature(stored.id, None, stored.properties)

    @abc.abstractmethod
    def delete(self, layer_id: str, fid: int, scope: Scope, *, if_match: str | None = None) -> None:
        """Delete one feature; NotFound outside the scope; PreconditionFailed on an ETag mismatch."""

    @abc.abstractmethod
    def bulk_load(self, layer_id: str, features: Iterable[Feature], *, replace: bool = False) -> int:
        """Load many features fast in one transaction (ids kept when given); returns the count.

        Features are checked like inserts; township/grid are filled by spatial join where the layer wants
        it and the feature does not carry them. With `replace`, the layer is emptied first.
        """

    @abc.abstractmethod
    def iter_features(self, layer_id: str, scope: Scope, batch_size: int = 5000) -> Iterator[Feature]:
        """Every feature of a layer within the scope, in id order, streamed (for exports)."""

    # -- accounts ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_users(self, users: Iterable[UserRecord]) -> None:
        """Insert or replace user accounts in one transaction (a replaced account's auth_version goes up)."""

    @abc.abstractmethod
    def get_user(self, username: str) -> UserRecord | None:
        """One account by name, or None."""

    @abc.abstractmethod
    def add_user(self, user: UserRecord) -> UserRecord:
        """Create an account (auth_version 1) and return it as stored; Conflict if the name is taken."""

    @abc.abstractmethod
    def update_user(self, user: UserRecord) -> UserRecord:
        """Replace an account atomically and return it with its auth_version bumped.

        Args:
            user: the new state; its `auth_version` must be the stored one (compare and swap).

        Raises:
            NotFound: no such account. Conflict: the account changed since `user` was read.
        """

    @abc.abstractmethod
    def list_users(self, *, role: str | None = None, township: str | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[list[UserRecord], int]:
        """A page of accounts in name order (of one role / holding one township) and how many match."""

    @abc.abstractmethod
    def account_states(self) -> dict[str, AccountState]:
        """The auth_version and disabled flag of every account (a small read, refreshed often)."""

    @abc.abstractmethod
    def put_api_key(self, key: ApiKeyRecord) -> None:
        """Store an API key (by hash); NotFound if its user does not exist."""

    @abc.abstractmethod
    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """An API key record by hash, or None."""

    @abc.abstractmethod
    def list_api_keys(self, username: str | None = None) -> list[ApiKeyRecord]:
        """Every API key, or one account's, oldest first."""

    @abc.abstractmethod
    def delete_api_key(self, key_id: str) -> ApiKeyRecord:
        """Revoke an API key by its id and return what it was; NotFound if there is none."""

    @abc.abstractmethod
    def login_failures(self, subjects: list[str], since: datetime) -> dict[str, LoginFailures]:
        """The failed-login counters of these subjects whose window opened after `since`."""

    @abc.abstractmethod
    def record_login_failure(self, subject: str, now: datetime, since: datetime) -> LoginFailures:
        """Count one failed login atomically (across processes); a window opened at or before `since` restarts."""

    @abc.abstractmethod
    def clear_login_failures(self, subject: str) -> None:
        """Forget a subject's failed logins."""

    # -- idempotency keys -------------------------------------------------------------------------------
    @abc.abstractmethod
    def claim_idempotency_key(self, record: IdempotencyRecord, lease_seconds: float) -> IdempotencyRecord | None:
        """Atomically claim (owner, endpoint, key): None if claimed now, else the record that holds it.

        A claim still without a response after `lease_seconds` is taken to be abandoned (its process died)
        and is claimed anew.
        """

    @abc.abstractmethod
    def finish_idempotency_key(self, owner: str, endpoint: str, key: str, response: dict[str, Any]) -> None:
        """Store the response of a claimed request, to be replayed to every retry."""

    @abc.abstractmethod
    def release_idempotency_key(self, owner: str, endpoint: str, key: str) -> None:
        """Drop an unfinished claim (the request failed; a retry may run it again)."""

    @abc.abstractmethod
    def purge_idempotency_keys(self, before: datetime) -> int:
        """Forget every idempotency key created before `before`; returns how many."""


    # -- transactions (the unit of work) and the change log ----------------------------------------------
    @contextmanager
    def transaction(self, actor: str | None = None) -> Iterator[Store]:
        """One transaction that every store call made inside it (in this thread) joins; yields the store.

        Reads inside see the transaction's own writes; the change-log rows of every write are appended at
        the end, in the same transaction, under `actor`. It all commits or nothing does. Nested calls join
        the outer transaction.

        Args:
            actor: who does it (a username, or a job's name); recorded on every change-log row.
        """
        if self._tx() is not None:
            yield self
            return
        with self._write(actor):
            yield self

    def _tx(self) -> _Tx | None:
        """The transaction open in this thread, if any."""
        return getattr(self._tx_local, "tx", None)

    @contextmanager
    def _joined(self, conn: Any, actor: str | None) -> Iterator[_Tx]:
        """Mark `conn`'s new transaction as this thread's, so store calls inside join it."""
        tx = _Tx(conn, actor)
        self._tx_local.tx = tx
        try:
            yield tx
        finally:
            self._tx_local.tx = None

    def _after_commit(self, tx: _Tx) -> None:
        """Deliver this process's own changes to its consumers at once (read-your-writes)."""
        if tx.pending and self.changes.listening:
            try:
                self.changes.catch_up()
            except Exception:  # the write has committed; the background reader will deliver it
                pass

    def record(self, change: PendingChange) -> None:
        """Add a change to the open transaction's log rows (domain workflows record their own actions)."""
        tx = self._tx()
        if tx is None:
            raise RuntimeError("record() outside a transaction")
        tx.pending.append(change)

    @abc.abstractmethod
    @contextmanager
    def _write(self, actor: str | None = None) -> Iterator[Any]:
        """The open transaction's connection, or a new write transaction that appends its change rows and
        commits at the end (rolled back on any error)."""

    @abc.abstractmethod
    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Committed changes with a seq above `seq`, in seq order, at most `limit`."""

    @abc.abstractmethod
    def change_bounds(self) -> tuple[int, int]:
        """(oldest seq kept, latest seq) of the change log; (0, 0) while it is empty."""

    @abc.abstractmethod
    def purge_changes(self, before: datetime) -> int:
        """Drop change-log rows older than `before` (the newest row is always kept); returns how many."""

    @abc.abstractmethod
    def wait_for_changes(self, timeout: float, stop: threading.Event) -> None:
        """Block until another process may have committed changes, or `timeout` seconds, or `stop` is set."""

    @abc.abstractmethod
    def aggregate(self, layer_id: str, query: FeatureQuery, scope: Scope,
                  group_by: tuple[str, ...], *, limit: int | None = None) -> list[tuple[tuple[Any, ...], int]]:
        """Counts of the features a query matches within the scope, grouped (the same WHERE as `query`).

        Args:
            layer_id: a catalog layer id.
            query: bbox / datetime / CQL2 filter (paging and sorting are ignored).
            scope: the townships the caller may see; applied inside the query.
            group_by: property names, `day`, `week`, `month` of the layer's time (local time), and/or `h3:R`,
                the H3 cell id (text) at resolution R of a heat-mapped layer (Layer.h3_cells).
            limit: at most this many groups (the first in group order); None for all.

        Returns:
            (group values, count) pairs ordered by the groups; one pair with () when group_by is empty.
        """

    @abc.abstractmethod
    def durations(self, layer_id: str, query: FeatureQuery, scope: Scope, start: str, end: str, *,
                  by: str | None = None, quantiles: tuple[float, ...] = (0.5,)) -> Durations:
        """How long from `start` to `end` the matched features took, computed in the database (no rows fetched).

        Args:
            layer_id: a catalog layer id.
            query: bbox / datetime / CQL2 filter (paging and sorting are ignored).
            scope: the townships the caller may see; applied inside the query.
            start, end: datetime properties; features missing either are left out.
            by: a datetime property; `in_time` counts the features whose `end` is not after it.
            quantiles: fractions in [0, 1].
        """

    # -- rows of the domain tables (the unit of work of workflows) ----------------------------------------
    rows_dialect = ""  # "pg" or "sqlite": how geoserver/store/rows_sql.py spells the statements

    @abc.abstractmethod
    def _reading(self) -> Any:
        """A context manager giving a connection for reads (the open transaction's, inside one)."""

    def _rows_sql(self, table_id: str) -> RowsSQL:
        sql = self._row_statements.get(table_id)
        if sql is None:
            sql = self._row_statements[table_id] = RowsSQL(self.catalog.table(table_id), self.rows_dialect)
        return sql

    def rows(self, table_id: str, where: dict[str, Any] | None = None, *, order_by: tuple[str, ...] = (),
             limit: int | None = None, offset: int = 0, for_update: bool = False) -> list[dict[str, Any]]:
        """Rows of a domain table matching `where` (column -> value, a list for IN, None for IS NULL).

        Args:
            table_id: a catalog Table id.
            where: equality conditions on declared columns.
            order_by: column names, `-name` for descending; `id` always breaks ties.
            limit, offset: a page.
            for_update: lock the rows until the transaction ends (PostgreSQL; the GeoPackage's write
                transaction already excludes every other writer).
        """
        sql = self._rows_sql(table_id)
        statement, params = sql.select(where, order_by, limit, offset, for_update)
        with self._reading() as conn:
            return [sql.row(r) for r in conn.execute(statement, params).fetchall()]

    def count_rows(self, table_id: str, where: dict[str, Any] | None = None) -> int:
        """How many rows match `where`."""
        statement, params = self._rows_sql(table_id).count(where)
        with self._reading() as conn:
            return int(conn.execute(statement, params).fetchone()[0])

    def add_row(self, table_id: str, row: dict[str, Any], *, unless: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """Insert one row (id assigned); returns it as stored. With `unless` (columns of a unique key), a row
        holding the same key already there means nothing is inserted and None is returned."""
        sql = self._rows_sql(table_id)
        statement, params = sql.insert(row, unless)
        with self._write() as conn:
            found = conn.execute(statement, params).fetchone()
            return None if found is None else sql.row(found)

    def add_rows(self, table_id: str, rows: Sequence[dict[str, Any]], *, unless: tuple[str, ...] = ()) -> None:
        """Insert many rows at once (ids assigned, nothing returned: one batch of statements, not a round trip
        per row). With `unless`, a row whose key is already there is skipped."""
        if not rows:
            return
        with self._write() as conn:
            for statement, params in self._rows_sql(table_id).insert_many(rows, unless):
                _executemany(conn, statement, params)

    def update_rows_by_id(self, table_id: str, values: dict[int, dict[str, Any]]) -> None:
        """Set each row's own values (row id -> {column: value}) at once."""
        if not values:
            return
        with self._write() as conn:
            for statement, params in self._rows_sql(table_id).update_by_id(values):
                _executemany(conn, statement, params)

    def update_many(self, layer_id: str, patches: Sequence[Feature], scope: Scope) -> list[Feature]:
        """Patch many features (each a partial Feature with its id) in the open transaction, or one of its own;
        returns them as stored, in order; a change-log row each; one patch per feature. NotFound if one is
        missing or out of scope.
        (Here one `update` each; a store may do it set-based.)"""
        with self.transaction():
            return [self.update(layer_id, int(f.id), f, scope, partial=True) for f in patches]

    def update_rows(self, table_id: str, where: dict[str, Any], values: dict[str, Any]) -> int:
        """Set `values` on the rows matching `where`; returns how many."""
        statement, params = self._rows_sql(table_id).update(where, values)
        with self._write() as conn:
            return conn.execute(statement, params).rowcount

    def delete_rows(self, table_id: str, where: dict[str, Any]) -> int:
        """Delete the rows matching `where`; returns how many."""
        statement, params = self._rows_sql(table_id).delete(where)
        with self._write() as conn:
            return conn.execute(statement, params).rowcount

    @abc.abstractmethod
    def lock(self, name: str) -> None:
        """Hold the named lock until the open transaction ends (another transaction locking `name` waits);
        RuntimeError outside a transaction."""

    # -- leases (background jobs) -------------------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease `name` for `holder` for `seconds`; False while another holder's is live."""

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give up a lease held by `holder` (another process may take it at once)."""


@dataclass
class _Tx:
    """A transaction open in one thread: its connection, its actor and the changes to log at commit."""

    conn: Any
    actor: str | None
    pending: list[PendingChange] = field(default_factory=list)


def _executemany(conn: Any, statement: str, params: list[list[Any]]) -> None:
    """One statement over many parameter lists (psycopg sends them pipelined, sqlite3 in a loop in C)."""
    cursor = conn.cursor()
    try:
        cursor.executemany(statement, params)
    finally:
        cursor.close()
