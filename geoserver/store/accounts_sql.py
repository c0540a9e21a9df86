"""The account tables in each store's SQL: users, API keys and failed-login counters.

One implementation for both stores: the statements are the same but for placeholders and how lists, JSON,
booleans and times are kept (PostgreSQL: text[], jsonb, boolean, timestamptz; the GeoPackage: JSON text,
0/1, DATETIME text). The caller owns the transaction; every function runs inside the one it is given.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from geoserver.changes import PendingChange
from geoserver.errors import Conflict, NotFound
from geoserver.store import gpkg
from geoserver.store.base import AccountState, ApiKeyRecord, LoginFailures, UserRecord
from geoserver.store.sqlite_dialect import format_datetime, parse_datetime

USER_COLUMNS = ("username", "role", "password_hash", "display_name", "townships", "grids", "department", "extra",
                "disabled", "auth_version")
KEY_COLUMNS = "key_hash, username, label, key_id, created_at"

# The change log names account writes by these tables (no layer has their names): a process's view of account
# versions follows "users"; "api_keys" rows are the record of who issued and revoked which key.
USERS_LOG, API_KEYS_LOG = "users", "api_keys"

SQLITE_LOGIN_FAILURES = """CREATE TABLE IF NOT EXISTS login_failures (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  subject TEXT NOT NULL UNIQUE,
  failures INTEGER NOT NULL,
  since DATETIME NOT NULL
)"""
# Columns added to the accounts of the first release: (table, column, declaration, statements run after).
SQLITE_ADDED_COLUMNS = (
    ("users", "disabled", "INTEGER NOT NULL DEFAULT 0", ()),
    ("users", "auth_version", "INTEGER NOT NULL DEFAULT 1", ()),
    ("api_keys", "key_id", "TEXT", ("UPDATE api_keys SET key_id = substr(key_hash, 1, 16) WHERE key_id IS NULL",
                                    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_key_id ON api_keys (key_id)")),
    ("api_keys", "created_at", "DATETIME", ()),
)


def sqlite_account_lifecycle(conn: Any) -> None:
    """GeoPackage step: accounts that can be disabled, a version per account, API key ids, failed logins."""
    for table, column, declaration, then in SQLITE_ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:  # a file an earlier build of this step already touched keeps what it has
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        for statement in then:
            conn.execute(statement)
    conn.execute(SQLITE_LOGIN_FAILURES)
    gpkg.register_attributes(conn, "login_failures", "Failed logins per account and per client address")


def user_change(op: str, username: str) -> PendingChange:
    """The change-log row of a write to one account."""
    return PendingChange(USERS_LOG, None, op, properties={"username": username})


def key_change(op: str, key: ApiKeyRecord) -> PendingChange:
    """The change-log row of an API key issued or revoked (never the key or its hash)."""
    return PendingChange(API_KEYS_LOG, None, op, properties={"username": key.username, "key_id": key.key_id})


class AccountSQL:
    """The account statements of one SQL dialect ('postgres' or 'sqlite')."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgres"
        self.array = "%s::text[]" if self.pg else "%s"

    # -- value conversion ---------------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text if self.pg else text.replace("%s", "?")

    def _list_in(self, values: tuple[str, ...]) -> Any:
        return list(values) if self.pg else json.dumps(list(values), ensure_ascii=False)

    def _list_out(self, value: Any) -> tuple[str, ...]:
        return tuple(value if self.pg else json.loads(value))

    def _json_in(self, value: dict[str, Any]) -> Any:
        return Jsonb(value) if self.pg else json.dumps(value, ensure_ascii=False)

    def _json_out(self, value: Any) -> dict[str, Any]:
        return dict(value) if self.pg else json.loads(value)

    def _time_in(self, value: datetime) -> Any:
        return value if self.pg else format_datetime(value)

    def _time_out(self, value: Any) -> datetime | None:
        return parse_datetime(value) if isinstance(value, str) else value

    def _user_row(self, u: UserRecord) -> list[Any]:
        return [u.username, u.role, u.password_hash, u.display_name, self._list_in(u.townships),
                self._list_in(u.grids), u.department, self._json_in(u.extra), bool(u.disabled) if self.pg
                else int(bool(u.disabled))]

    def _user(self, row: Any) -> UserRecord:
        name, role, pw, display, townships, grids, department, extra, disabled, version = row
        return UserRecord(name, role, pw, display, self._list_out(townships), self._list_out(grids), department,
                          self._json_out(extra), bool(disabled), int(version))

    def _key(self, row: Any) -> ApiKeyRecord:
        key_hash, username, label, key_id, created_at = row
        return ApiKeyRecord(key_hash, username, label, key_id, self._time_out(created_at))

    def _values(self) -> str:
        arr = self.array
        return f"%s, %s, %s, %s, {arr}, {arr}, %s, %s, %s"

    # -- users --------------------------------------------------------------------------------------------
    def put_users(self, conn: Any, users: list[UserRecord]) -> None:
        """Insert or replace accounts; a replaced account's auth_version goes up (its tokens stop working)."""
        cols = ", ".join(USER_COLUMNS[:-1])
        updates = ", ".join(f"{c} = excluded.{c}" for c in USER_COLUMNS[1:-1])
        sql = (f"INSERT INTO users ({cols}) VALUES ({self._values()}) ON CONFLICT (username) DO UPDATE SET "
               f"{updates}, auth_version = users.auth_version + 1")
        conn.cursor().executemany(self._sql(sql), [self._user_row(u) for u in users])

    def get_user(self, conn: Any, username: str) -> UserRecord | None:
        """One account by name, or None."""
        row = conn.execute(self._sql(f"SELECT {', '.join(USER_COLUMNS)} FROM users WHERE username = %s"),
                           [username]).fetchone()
        return None if row is None else self._user(row)

    def add_user(self, conn: Any, user: UserRecord) -> UserRecord:
        """Create an account at auth_version 1; Conflict if the name is taken."""
        if conn.execute(self._sql("SELECT 1 FROM users WHERE username = %s"), [user.username]).fetchone():
            raise Conflict(f"there is already an account {user.username!r}", parameter="username")
        conn.execute(self._sql(f"INSERT INTO users ({', '.join(USER_COLUMNS[:-1])}) VALUES ({self._values()})"),
                     self._user_row(user))
        return self.get_user(conn, user.username)  # type: ignore[return-value]

    def update_user(self, conn: Any, user: UserRecord) -> UserRecord:
        """Replace an account if its auth_version is still `user.auth_version`, and bump the version."""
        sets = ", ".join(f"{c} = {self.array if c in ('townships', 'grids') else '%s'}" for c in USER_COLUMNS[1:-1])
        row = self._user_row(user)[1:]
        done = conn.execute(self._sql(f"UPDATE users SET {sets}, auth_version = auth_version + 1 "
                                      "WHERE username = %s AND auth_version = %s"),
                            [*row, user.username, user.auth_version]).rowcount
        if not done:
            current = self.get_user(conn, user.username)
            if current is None:
                raise NotFound(f"no account {user.username!r}", parameter="username")
            raise Conflict(f"the account {user.username!r} was changed meanwhile (now version "
                           f"{current.auth_version}, not {user.auth_version}); read it again", parameter="version")
        return self.get_user(conn, user.username)  # type: ignore[return-value]

    def list_users(self, conn: Any, role: str | None, township: str | None, limit: int,
                   offset: int) -> tuple[list[UserRecord], int]:
        """A page of accounts in name order, optionally of one role or holding one township, and the total."""
        clauses, params = [], []
        if role is not None:
            clauses.append("role = %s")
            params.append(role)
        if township is not None:
            clauses.append("%s = ANY(townships)" if self.pg
                           else "EXISTS (SELECT 1 FROM json_each(users.townships) WHERE value = %s)")
            params.append(township)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        total = conn.execute(self._sql(f"SELECT COUNT(*) FROM users{where}"), params).fetchone()[0]
        rows = conn.execute(self._sql(f"SELECT {', '.join(USER_COLUMNS)} FROM users{where} ORDER BY username "
                                      "LIMIT %s OFFSET %s"), [*params, limit, offset]).fetchall()
        return [self._user(r) for r in rows], int(total)

    def account_states(self, conn: Any) -> dict[str, AccountState]:
        """username -> (auth_version, disabled) of every account: what the token check compares with."""
        rows = conn.execute("SELECT username, auth_version, disabled FROM users").fetchall()
        return {name: AccountState(int(version), bool(disabled)) for name, version, disabled in rows}

    # -- API keys -----------------------------------------------------------------------------------------
    def put_api_key(self, conn: Any, key: ApiKeyRecord, now: datetime) -> None:
        """Store (or rebind and relabel) an API key; NotFound if its user does not exist."""
        if not conn.execute(self._sql("SELECT 1 FROM users WHERE username = %s"), [key.username]).fetchone():
            raise NotFound(f"no account {key.username!r}", parameter="username")
        conn.execute(self._sql(
            f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key_hash) DO UPDATE "
            "SET username = excluded.username, label = excluded.label"),
            [key.key_hash, key.username, key.label, key.key_id, self._time_in(key.created_at or now)])

    def get_api_key(self, conn: Any, key_hash: str) -> ApiKeyRecord | None:
        """An API key by its hash, or None."""
        row = conn.execute(self._sql(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = %s"),
                           [key_hash]).fetchone()
        return None if row is None else self._key(row)

    def list_api_keys(self, conn: Any, username: str | None) -> list[ApiKeyRecord]:
        """Every API key (of one account, when named), oldest first."""
        where, params = (" WHERE username = %s", [username]) if username is not None else ("", [])
        rows = conn.execute(self._sql(f"SELECT {KEY_COLUMNS} FROM api_keys{where} ORDER BY created_at, key_id"),
                            params).fetchall()
        return [self._key(r) for r in rows]

    def delete_api_key(self, conn: Any, key_id: str) -> ApiKeyRecord:
        """Remove an API key by its public id and return what it was; NotFound if there is none."""
        row = conn.execute(self._sql(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = %s"), [key_id]).fetchone()
        if row is None:
            raise NotFound(f"no API key {key_id!r}", parameter="key_id")
        conn.execute(self._sql("DELETE FROM api_keys WHERE key_id = %s"), [key_id])
        return self._key(row)

    # -- failed logins ------------------------------------------------------------------------------------
    def login_failures(self, conn: Any, subjects: list[str], since: datetime) -> dict[str, LoginFailures]:
        """The failure counters of these subjects whose window opened after `since` (older ones have lapsed)."""
        if not subjects:
            return {}
        marks = ", ".join(["%s"] * len(subjects))
        rows = conn.execute(self._sql(f"SELECT subject, failures, since FROM login_failures WHERE subject IN "
                                      f"({marks}) AND since > %s"), [*subjects, self._time_in(since)]).fetchall()
        return {s: LoginFailures(int(n), self._time_out(t)) for s, n, t in rows}  # type: ignore[arg-type]

    def record_login_failure(self, conn: Any, subject: str, now: datetime, since: datetime) -> LoginFailures:
        """Count one failure in one statement: a window opened at or before `since` starts again at `now`."""
        sql = ("INSERT INTO login_failures (subject, failures, since) VALUES (%s, 1, %s) ON CONFLICT (subject) "
               "DO UPDATE SET failures = CASE WHEN login_failures.since > %s THEN login_failures.failures + 1 "
               "ELSE 1 END, since = CASE WHEN login_failures.since > %s THEN login_failures.since "
               "ELSE excluded.since END RETURNING failures, since")
        start = self._time_in(since)
        # fetchall: SQLite finishes a RETURNING statement only once every row has been read
        n, t = conn.execute(self._sql(sql), [subject, self._time_in(now), start, start]).fetchall()[0]
        return LoginFailures(int(n), self._time_out(t))  # type: ignore[arg-type]

    def clear_login_failures(self, conn: Any, subject: str) -> None:
        """Forget a subject's failures (after a successful login or a new password)."""
        conn.execute(self._sql("DELETE FROM login_failures WHERE subject = %s"), [subject])


POSTGRES = AccountSQL("postgres")
SQLITE = AccountSQL("sqlite")
