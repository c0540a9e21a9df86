"""The idempotency-key table in each store's SQL: claim a key atomically, record its response, release it.

PostgreSQL: the claim is one INSERT … ON CONFLICT, so two processes claiming one key at once are decided by
the primary key (the second waits for the first's commit, then sees its row). SQLite: the claim runs in a
BEGIN IMMEDIATE transaction, which every writer of the file takes in turn.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from geoserver.errors import Conflict
from geoserver.store.base import IdempotencyRecord
from geoserver.store.sqlite_dialect import format_datetime, parse_datetime

SQLITE_DDL = """CREATE TABLE IF NOT EXISTS idempotency_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  owner TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  response TEXT,
  created_at DATETIME NOT NULL,
  UNIQUE (owner, endpoint, key)
)"""
LOCK_WAIT_SECONDS = 10.0
_WHERE = "owner = {p} AND endpoint = {p} AND key = {p}"


def _record(owner: str, endpoint: str, key: str, row: tuple[Any, Any, Any]) -> IdempotencyRecord:
    request_hash, response, created_at = row
    if isinstance(response, str):
        response = json.loads(response)
    if isinstance(created_at, str):
        created_at = parse_datetime(created_at)
    return IdempotencyRecord(owner, endpoint, key, request_hash, response, created_at)


# -- PostgreSQL -------------------------------------------------------------------------------------------


def pg_claim(conn: psycopg.Connection, record: IdempotencyRecord, lease_seconds: float) -> IdempotencyRecord | None:
    """Claim the key (None) or return the record holding it; an abandoned claim is taken over."""
    ident = [record.owner, record.endpoint, record.key]
    in_transaction = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    if in_transaction:  # a first request still running holds the key's row: wait for it, not for ever
        conn.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'")
    while True:
        try:
            claimed = conn.execute(
                "INSERT INTO idempotency_keys (owner, endpoint, key, request_hash) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (owner, endpoint, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
                " created_at = now() WHERE idempotency_keys.response IS NULL"
                " AND idempotency_keys.created_at < now() - make_interval(secs => %s) RETURNING 1",
                [*ident, record.request_hash, float(lease_seconds)]).fetchone()
        except psycopg.errors.LockNotAvailable:
            raise Conflict(f"a request with Idempotency-Key {record.key!r} is still in progress; retry later",
                           parameter="Idempotency-Key") from None
        if claimed:
            if in_transaction:
                conn.execute("SET LOCAL lock_timeout = DEFAULT")
            return None
        row = conn.execute("SELECT request_hash, response, created_at FROM idempotency_keys WHERE "
                           + _WHERE.format(p="%s"), ident).fetchone()
        if row is not None:
            return _record(*ident, row)
        # Released between the two statements: claim again.


def pg_finish(conn: psycopg.Connection, owner: str, endpoint: str, key: str, response: dict[str, Any]) -> None:
    """Record the response of a claimed key."""
    conn.execute("UPDATE idempotency_keys SET response = %s WHERE " + _WHERE.format(p="%s"),
                 [Jsonb(response), owner, endpoint, key])


def pg_release(conn: psycopg.Connection, owner: str, endpoint: str, key: str) -> None:
    """Drop an unfinished claim."""
    conn.execute("DELETE FROM idempotency_keys WHERE response IS NULL AND " + _WHERE.format(p="%s"),
                 [owner, endpoint, key])


def pg_purge(conn: psycopg.Connection, before: datetime) -> int:
    """Delete keys created before `before`; returns how many."""
    return conn.execute("DELETE FROM idempotency_keys WHERE created_at < %s", [before]).rowcount


# -- SQLite (the GeoPackage) -------------------------------------------------------------------------------


def sqlite_claim(conn: sqlite3.Connection, record: IdempotencyRecord, lease_seconds: float
                 ) -> IdempotencyRecord | None:
    """Claim the key (None) or return the record holding it; call inside a BEGIN IMMEDIATE transaction."""
    ident = (record.owner, record.endpoint, record.key)
    now = datetime.now(UTC)
    row = conn.execute("SELECT request_hash, response, created_at FROM idempotency_keys WHERE "
                       + _WHERE.format(p="?"), ident).fetchone()
    if row is not None:
        held = _record(*ident, row)
        assert held.created_at is not None
        if held.response is not None or held.created_at > now - timedelta(seconds=lease_seconds):
            return held
    conn.execute("INSERT INTO idempotency_keys (owner, endpoint, key, request_hash, response, created_at)"
                 " VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (owner, endpoint, key) DO UPDATE SET"
                 " request_hash = excluded.request_hash, response = NULL, created_at = excluded.created_at",
                 (*ident, record.request_hash, format_datetime(now)))
    return None


def sqlite_finish(conn: sqlite3.Connection, owner: str, endpoint: str, key: str, response: dict[str, Any]) -> None:
    """Record the response of a claimed key."""
    conn.execute("UPDATE idempotency_keys SET response = ? WHERE " + _WHERE.format(p="?"),
                 (json.dumps(response, ensure_ascii=False), owner, endpoint, key))


def sqlite_release(conn: sqlite3.Connection, owner: str, endpoint: str, key: str) -> None:
    """Drop an unfinished claim."""
    conn.execute("DELETE FROM idempotency_keys WHERE response IS NULL AND " + _WHERE.format(p="?"),
                 (owner, endpoint, key))


def sqlite_purge(conn: sqlite3.Connection, before: datetime) -> int:
    """Delete keys created before `before`; returns how many."""
    return conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (format_datetime(before),)).rowcount
