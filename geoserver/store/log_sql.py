"""The change log and job leases in each store's SQL.

PostgreSQL: the rows of a transaction are appended last, under a transaction-level advisory lock held until
commit, so seqs become visible in seq order (a reader taking `seq > last` never skips a row that commits
later); a NOTIFY carrying the newest seq goes out with the commit. SQLite: every writer of the file already
runs in turn under BEGIN IMMEDIATE, so AUTOINCREMENT seqs commit in order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from geoserver.changes import Change, PendingChange
from geoserver.store.sqlite_dialect import format_datetime, parse_datetime

CHANNEL = "onemap_changes"
# Serialises the tail of writing transactions (any fixed number; the same in every process).
CHANGES_LOCK_KEY = 0x6F6E656D6170 + 1
_COLUMNS = "seq, layer, fid, op, township_before, township_after, bbox_before, bbox_after, actor, at, properties"
_INSERT = ("INSERT INTO changes (layer, fid, op, township_before, township_after, bbox_before, bbox_after, "
           "properties, actor, at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})")

SQLITE_DDL = (
    """CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  layer TEXT NOT NULL,
  fid INTEGER,
  op TEXT NOT NULL,
  township_before TEXT,
  township_after TEXT,
  bbox_before TEXT,
  bbox_after TEXT,
  properties TEXT NOT NULL DEFAULT '{}',
  actor TEXT,
  at DATETIME NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS changes_at ON changes (at)",
    """CREATE TABLE IF NOT EXISTS job_leases (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  name TEXT NOT NULL UNIQUE,
  holder TEXT NOT NULL,
  expires_at DATETIME NOT NULL
)""",
)


def _change(row: Sequence[Any]) -> Change:
    seq, layer, fid, op, tb, ta, bb, ba, actor, at, props = row
    if isinstance(bb, str):
        bb = json.loads(bb)
    if isinstance(ba, str):
        ba = json.loads(ba)
    if isinstance(props, str):
        props = json.loads(props)
    if isinstance(at, str):
        at = parse_datetime(at)
    return Change(int(seq), layer, fid, op, tb, ta, tuple(bb) if bb else None, tuple(ba) if ba else None,
                  actor, at, props or {})


# -- PostgreSQL -------------------------------------------------------------------------------------------


def pg_append(conn: psycopg.Connection, pending: list[PendingChange], actor: str | None) -> None:
    """Append a transaction's changes (call last in the transaction) and NOTIFY the newest seq at commit."""
    if not pending:
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [CHANGES_LOCK_KEY])
    now = datetime.now(UTC)
    rows = [(c.layer_id, c.fid, c.op, c.township_before, c.township_after,
             list(c.before) if c.before else None, list(c.after) if c.after else None,
             Jsonb(c.properties), actor, now) for c in pending]
    with conn.cursor() as cur:
        cur.executemany(_INSERT.format(p="%s"), rows)
    conn.execute(f"SELECT pg_notify('{CHANNEL}', (SELECT max(seq) FROM changes)::text)")


def pg_since(conn: psycopg.Connection, seq: int, limit: int) -> list[Change]:
    """Changes after `seq`, in order."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM changes WHERE seq > %s ORDER BY seq LIMIT %s",
                        [seq, limit]).fetchall()
    return [_change(r) for r in rows]


def pg_bounds(conn: psycopg.Connection) -> tuple[int, int]:
    """(oldest, latest) seq."""
    lo, hi = conn.execute("SELECT min(seq), max(seq) FROM changes").fetchone()
    return int(lo or 0), int(hi or 0)


def pg_purge(conn: psycopg.Connection, before: datetime) -> int:
    """Drop rows older than `before`, never the newest."""
    return conn.execute("DELETE FROM changes WHERE at < %s AND seq < (SELECT max(seq) FROM changes)",
                        [before]).rowcount


def pg_acquire(conn: psycopg.Connection, name: str, holder: str, seconds: float) -> bool:
    """Take or renew a lease; False while another holder's lease is live."""
    row = conn.execute(
        "INSERT INTO job_leases (name, holder, expires_at) VALUES (%s, %s, now() + make_interval(secs => %s))"
        " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at"
        " WHERE job_leases.holder = EXCLUDED.holder OR job_leases.expires_at < now() RETURNING holder",
        [name, holder, float(seconds)]).fetchone()
    return row is not None


def pg_release(conn: psycopg.Connection, name: str, holder: str) -> None:
    """Drop a lease if `holder` has it."""
    conn.execute("DELETE FROM job_leases WHERE name = %s AND holder = %s", [name, holder])


# -- SQLite (the GeoPackage) -------------------------------------------------------------------------------


def sqlite_append(conn: sqlite3.Connection, pending: list[PendingChange], actor: str | None) -> None:
    """Append a transaction's changes (inside its BEGIN IMMEDIATE)."""
    if not pending:
        return
    now = format_datetime(datetime.now(UTC))
    conn.executemany(_INSERT.format(p="?"), [
        (c.layer_id, c.fid, c.op, c.township_before, c.township_after,
         json.dumps(list(c.before)) if c.before else None, json.dumps(list(c.after)) if c.after else None,
         json.dumps(c.properties, ensure_ascii=False, default=str), actor, now) for c in pending])


def sqlite_since(conn: sqlite3.Connection, seq: int, limit: int) -> list[Change]:
    """Changes after `seq`, in order."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                        (seq, limit)).fetchall()
    return [_change(r) for r in rows]


def sqlite_bounds(conn: sqlite3.Connection) -> tuple[int, int]:
    """(oldest, latest) seq."""
    lo, hi = conn.execute("SELECT min(seq), max(seq) FROM changes").fetchone()
    return int(lo or 0), int(hi or 0)


def sqlite_purge(conn: sqlite3.Connection, before: datetime) -> int:
    """Drop rows older than `before`, never the newest."""
    return conn.execute("DELETE FROM changes WHERE at < ? AND seq < (SELECT max(seq) FROM changes)",
                        (format_datetime(before),)).rowcount


def sqlite_acquire(conn: sqlite3.Connection, name: str, holder: str, seconds: float) -> bool:
    """Take or renew a lease (inside BEGIN IMMEDIATE); False while another holder's lease is live."""
    now = datetime.now(UTC)
    row = conn.execute(
        "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
        " holder = excluded.holder, expires_at = excluded.expires_at"
        " WHERE job_leases.holder = excluded.holder OR job_leases.expires_at < ? RETURNING holder",
        (name, holder, format_datetime(now + timedelta(seconds=seconds)), format_datetime(now))).fetchone()
    return row is not None


def sqlite_release(conn: sqlite3.Connection, name: str, holder: str) -> None:
    """Drop a lease if `holder` has it."""
    conn.execute("DELETE FROM job_leases WHERE name = ? AND holder = ?", (name, holder))
