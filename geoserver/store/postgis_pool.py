"""The PostGIS store's connections: a pool that checks each connection before use, fails fast while
PostgreSQL is down and reopens within a fraction of a second of its return.

psycopg_pool alone gets outages wrong for a server: its dead idle connections are handed out one by one after
a restart, a request waits its whole timeout for a connection the pool cannot make, and its reconnect backoff
(1, 2, 4, 8 s …) delays recovery by seconds. So each connection is checked as it leaves the pool (a poll of
its socket, then a round trip if the server wrote to it), and a watcher thread keeps the verdict: any sign of
trouble (a connection that fails its check or breaks mid-statement, a connection attempt that fails) makes it
try one fresh connection. If that works, the pool is replaced by a fresh one (its other idle connections are
as dead as the one found); if not, PostgreSQL is *down*: the pool is closed (its waiting requests are woken at
once), every request fails immediately with StoreUnavailable carrying a Retry-After hint, and the watcher
tries to connect every PROBE_INTERVAL seconds, opening a new pool as soon as one attempt succeeds.
A pool that is merely busy is not down: its requests wait for a free connection as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import select
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from geoserver.errors import StoreUnavailable

log = logging.getLogger("onemap.store")

PROBE_INTERVAL = 0.2  # seconds between connection attempts while PostgreSQL is down
RETRY_AFTER = 1.0  # what a client is told to wait (Retry-After) before retrying a 503
PROBE_CONNECT_TIMEOUT = 2  # libpq's smallest connect_timeout; a refused connection fails at once anyway
# Connection refusals that mean "the server is up but full": busy, not down.
_FULL = ("too many clients", "remaining connection slots are reserved")


@dataclass(frozen=True)
class Outage:
    """PostgreSQL is unreachable: since when (time.monotonic) and why (the last connection error)."""

    since: float
    reason: str


class PostgresPool:
    """A psycopg_pool.ConnectionPool that tells "down" from "busy" and recovers by itself.

    Args:
        url: the libpq URL.
        where: host:port/database, for messages.
        min_size, max_size: the pool's bounds.
        connect_timeout: seconds a new connection may take.
        wait_timeout: seconds a request waits for a free connection from a healthy but busy pool.
        configure: session settings applied to every new connection.
    """

    def __init__(self, url: str, where: str, *, min_size: int, max_size: int, connect_timeout: float,
                 wait_timeout: float, configure: Callable[[psycopg.Connection], None]) -> None:
        self.url = url
        self.where = where
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = max(1, round(connect_timeout))
        self.wait_timeout = wait_timeout
        self._configure = configure
        self._cond = threading.Condition()
        self._pool: ConnectionPool | None = None  # None while down or closed
        self._outage: Outage | None = None
        self._suspected: str | None = None  # trouble seen, not yet judged by the watcher
        self._closing = False
        self._watcher: threading.Thread | None = None
        self._async: asyncpg.Pool | None = None  # the event loop's own connections (open_async)
        self._async_loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle -------------------------------------------------------------------------------------
    def open(self) -> None:
        """Check the server answers (a clear error if not), open the pool and start the watcher."""
        reason = self._probe(self.connect_timeout)
        if reason is not None:  # the pool would retry quietly and only say "timeout"
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {self.where}: {reason}")
        pool = self._new_pool()
        try:
            pool.open(wait=True, timeout=self.connect_timeout * 2)
        except PoolTimeout:
            pool.close()
            raise StoreUnavailable(f"cannot open a connection pool to PostgreSQL at {self.where}") from None
        self._pool = pool
        self._watcher = threading.Thread(target=self._watch, name="onemap-pg-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop the watcher and close the pool."""
        with self._cond:
            self._closing = True
            pool, self._pool = self._pool, None
            self._cond.notify_all()
        if self._watcher is not None:
            self._watcher.join(timeout=self.connect_timeout + 5)
        if pool is not None:
            pool.close()

    def outage(self) -> Outage | None:
        """The current outage, or None while PostgreSQL answers."""
        return self._outage

    def stats(self) -> dict[str, int]:
        """The pool's size, idle connections and waiting requests (zeros while down)."""
        pool = self._pool
        s = pool.get_stats() if pool is not None else {}
        return {"size": s.get("pool_size", 0), "idle": s.get("pool_available", 0),
                "waiting": s.get("requests_waiting", 0)}

    # -- the event loop's connections --------------------------------------------------------------------
    async def open_async(self, session: tuple[str, ...]) -> None:
        """Open a second pool, of asyncpg connections on the running event loop, for the hottest read answered
        on the loop itself: an uncached tile, with no hand-over to a worker thread and back, and asyncpg's
        binary protocol (per statement ~0.37 ms of CPU against psycopg's 0.47 ms, or 0.66 ms async; measured
        on the tile statements, docs/benchmarks.md). Connections are made on demand, each set up with the
        `session` statements; the outage watcher stays the synchronous pool's."""
        if self._async is not None:
            return

        async def setup(conn: asyncpg.Connection) -> None:
            for statement in session:
                await conn.execute(statement)

        async def keep(conn: asyncpg.Connection) -> None:
            """asyncpg's default reset (RESET ALL, UNLISTEN, CLOSE ALL, unlock) is a round trip on every release
            and would undo `session`; these connections only ever run single read statements."""

        pool = asyncpg.create_pool(self.url, min_size=0, max_size=self.max_size, init=setup, reset=keep,
                                   timeout=self.connect_timeout, server_settings={"application_name": "onemap"})
        await pool
        self._async, self._async_loop = pool, asyncio.get_running_loop()

    async def close_async(self) -> None:
        """Close the asynchronous pool (from the loop that opened it)."""
        pool, self._async, self._async_loop = self._async, None, None
        if pool is None:
            return
        if self._outage is not None:  # its connections are dead: nothing to close politely
            pool.terminate()
        else:
            await pool.close()

    def async_ready(self) -> bool:
        """True on the loop that opened the asynchronous pool while PostgreSQL is not known to be down."""
        if self._async is None or self._outage is not None or self._suspected is not None:
            return False
        try:
            return asyncio.get_running_loop() is self._async_loop
        except RuntimeError:
            return False

    async def fetch_value(self, sql: str, params: list[Any]) -> Any:
        """The first column of the first row of one statement ($1-numbered parameters) on the asynchronous
        pool. A broken connection is reported to the watcher, which judges PostgreSQL as for the synchronous
        pool's; the caller falls back to that pool on any error."""
        if self._async is None:
            raise StoreUnavailable("the asynchronous pool is not open")
        try:
            async with self._async.acquire(timeout=self.wait_timeout) as conn:
                return await conn.fetchval(sql, *params)
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.CannotConnectNowError) as exc:
            self._suspect(self._pool, _reason(exc))
            raise

    # -- requests ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A checked, working connection; StoreUnavailable at once while down, after wait_timeout if busy."""
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self._cond:
                outage, pool, closing = self._outage, self._pool, self._closing
            if outage is not None:
                raise self._unavailable(outage)
            if pool is None or closing:
                raise StoreUnavailable("the PostGIS store is not open")
            try:
                conn = pool.getconn(timeout=max(0.001, deadline - time.monotonic()))
            except PoolClosed:  # replaced or closed by the watcher while we waited: look again
                continue
            except PoolTimeout:
                if self._outage is not None:
                    raise self._unavailable(self._outage) from None
                log.warning("a request waited %g s for one of the %d connections to PostgreSQL at %s",
                            self.wait_timeout, self.max_size, self.where)
                raise StoreUnavailable(
                    f"all {self.max_size} connections to PostgreSQL at {self.where} stayed busy for"
                    f" {self.wait_timeout:g} s", retry_after=RETRY_AFTER) from None
            try:
                # The check, so a connection that died while idle (a restart) is found here and replaced
                # instead of failing the caller's statement: an empty round trip, when the server has
                # written to the idle connection or closed it (what a shutdown or a crash does).
                if not _quiet(conn):
                    ConnectionPool.check_connection(conn)
            except psycopg.Error as exc:
                pool.putconn(conn)  # the pool drops a broken connection
                self._suspect(pool, _reason(exc))
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(f"PostgreSQL at {self.where}: {_reason(exc)}",
                                           retry_after=RETRY_AFTER) from None
                continue
            break
        try:
            yield conn
        except psycopg.OperationalError as exc:
            if conn.broken or conn.closed:  # the server went away mid-statement
                self._suspect(pool, _reason(exc))
            raise
        finally:
            pool.putconn(conn)

    def _unavailable(self, outage: Outage) -> StoreUnavailable:
        age = time.monotonic() - outage.since
        return StoreUnavailable(
            f"PostgreSQL at {self.where} has been unreachable for {age:.1f} s ({outage.reason}); reconnecting"
            f" every {PROBE_INTERVAL:g} s", retry_after=RETRY_AFTER)

    def _suspect(self, pool: ConnectionPool | None, reason: str) -> None:
        """Report trouble seen on `pool` (ignored when that pool was already replaced)."""
        with self._cond:
            if pool is self._pool and self._outage is None and self._suspected is None:
                self._suspected = reason
                self._cond.notify_all()

    # -- the watcher ------------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Judge reported trouble; while down, reconnect until PostgreSQL answers."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or self._suspected is not None)
                if self._closing:
                    return
                suspected = self._suspected
            reason = self._probe(PROBE_CONNECT_TIMEOUT)
            if reason is None:
                log.info("a connection to PostgreSQL at %s broke (%s); opening fresh ones", self.where,
                         suspected)
                if self._replace_pool():
                    continue
                reason = "a new connection pool could not be opened"
            self._go_down(reason)
            self._recover()

    def _go_down(self, reason: str) -> None:
        with self._cond:
            pool, self._pool = self._pool, None
            self._outage = Outage(time.monotonic(), reason)
            self._suspected = None
        log.warning("PostgreSQL at %s is unreachable (%s): requests get 503 until it answers", self.where,
                    reason)
        if pool is not None:
            pool.close(timeout=1.0)  # wakes its waiting requests (PoolClosed), which then see the outage

    def _recover(self) -> None:
        """Try to connect every PROBE_INTERVAL; on success open a new pool and end the outage."""
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._closing, timeout=PROBE_INTERVAL):
                    return
            reason = self._probe(PROBE_CONNECT_TIMEOUT)
            if reason is None and self._replace_pool():
                outage = self._outage
                with self._cond:
                    self._outage = None
                    self._suspected = None
                if outage is not None:
                    log.warning("PostgreSQL at %s answers again after %.1f s", self.where,
                                time.monotonic() - outage.since)
                return
            with self._cond:
                if self._outage is not None and reason is not None:
                    self._outage = Outage(self._outage.since, reason)

    def _replace_pool(self) -> bool:
        """Open a fresh pool and put it in place of the current one (closed after); False if it cannot."""
        pool = self._new_pool()
        try:
            pool.open(wait=True, timeout=self.connect_timeout)
        except PoolTimeout:
            pool.close(timeout=1.0)
            return False
        with self._cond:
            if self._closing:
                old = pool
            else:
                old, self._pool = self._pool, pool
                self._suspected = None
        if old is not None:
            old.close(timeout=1.0)  # connections still in use are closed when they come back
        return True

    def _new_pool(self) -> ConnectionPool:
        """A pool (not yet open) whose failed connection attempts are reported to the watcher."""
        owner: list[ConnectionPool] = []
        report = self._suspect

        class ReportingConnection(psycopg.Connection):
            """A connection whose failure to connect counts as trouble (unless the server is merely full)."""

            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> ReportingConnection:
                try:
                    return super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as exc:
                    reason = _reason(exc)
                    if not any(text in reason for text in _FULL):
                        report(owner[0] if owner else None, reason)
                    raise

        pool = ConnectionPool(
            self.url, min_size=self.min_size, max_size=self.max_size, open=False, name="onemap",
            connection_class=ReportingConnection, configure=self._configure, timeout=self.wait_timeout,
            kwargs={"autocommit": True, "connect_timeout": self.connect_timeout,
                    "application_name": "onemap"},
        )
        owner.append(pool)
        return pool

    def _probe(self, timeout: int) -> str | None:
        """None if a fresh connection can be made (or the server is up but full), else why not."""
        try:
            psycopg.connect(self.url, connect_timeout=timeout, application_name="onemap probe").close()
        except psycopg.Error as exc:
            reason = _reason(exc)
            return None if any(text in reason for text in _FULL) else reason
        return None


def _quiet(conn: psycopg.Connection) -> bool:
    """True if nothing arrived on this idle connection: no termination notice, no end of stream.

    A poll of the socket (microseconds) instead of a round trip per use (measured ~0.1 ms): a server that
    shuts down or crashes always says so or closes the socket.
    """
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def _reason(exc: BaseException) -> str:
    """libpq's error in one line, without its repetition of the address."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return re.sub(r"^(connection failed: )?connection to server at [^:]*? failed: ", "", text)
