"""The PostGIS store's accounts, API keys, failed-login counters and idempotency keys (the SQL is in
accounts_sql.py and idempotency_sql.py); a part of PostGISStore, which supplies its connections."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from psycopg import errors as pg_errors

from geoserver.changes import DELETE, INSERT, UPDATE
from geoserver.errors import NotFound
from geoserver.store import accounts_sql
from geoserver.store import idempotency_sql as keys
from geoserver.store.accounts_sql import POSTGRES as ACCOUNTS
from geoserver.store.base import AccountState, ApiKeyRecord, IdempotencyRecord, LoginFailures, UserRecord


class PostGISAccounts:
    """Mixed into PostGISStore: uses its `_connection`, `_write` and `record`."""

    # -- accounts ---------------------------------------------------------------------------------------
    def put_users(self, users: Iterable[UserRecord]) -> None:
        """Insert or replace accounts in one transaction (a replaced account's auth_version goes up)."""
        rows = list(users)
        if rows:
            with self._write() as conn:
                ACCOUNTS.put_users(conn, rows)
                for user in rows:
                    self.record(accounts_sql.user_change(UPDATE, user.username))

    def get_user(self, username: str) -> UserRecord | None:
        """One account, or None."""
        with self._connection() as conn:
            return ACCOUNTS.get_user(conn, username)

    def add_user(self, user: UserRecord) -> UserRecord:
        """Create an account; Conflict if the name is taken (also when another process takes it first)."""
        with self._write() as conn:
            self.record(accounts_sql.user_change(INSERT, user.username))
            return ACCOUNTS.add_user(conn, user)

    def update_user(self, user: UserRecord) -> UserRecord:
        """Replace an account if it is still at `user.auth_version`; bumps the version."""
        with self._write() as conn:
            self.record(accounts_sql.user_change(UPDATE, user.username))
            return ACCOUNTS.update_user(conn, user)

    def list_users(self, *, role: str | None = None, township: str | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[list[UserRecord], int]:
        """A page of accounts in name order, and how many match (one snapshot)."""
        with self._connection() as conn, conn.transaction():
            return ACCOUNTS.list_users(conn, role, township, limit, offset)

    def account_states(self) -> dict[str, AccountState]:
        """auth_version and disabled of every account."""
        with self._connection() as conn:
            return ACCOUNTS.account_states(conn)

    def put_api_key(self, key: ApiKeyRecord) -> None:
        """Store (or relabel) an API key; NotFound if its user does not exist."""
        try:
            with self._write() as conn:
                ACCOUNTS.put_api_key(conn, key, datetime.now(UTC))
                self.record(accounts_sql.key_change(INSERT, key))
        except pg_errors.ForeignKeyViolation:  # the user went away between the check and the insert
            raise NotFound(f"no account {key.username!r}", parameter="username") from None

    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """An API key by hash, or None."""
        with self._connection() as conn:
            return ACCOUNTS.get_api_key(conn, key_hash)

    def list_api_keys(self, username: str | None = None) -> list[ApiKeyRecord]:
        """Every API key (of one account), oldest first."""
        with self._connection() as conn:
            return ACCOUNTS.list_api_keys(conn, username)

    def delete_api_key(self, key_id: str) -> ApiKeyRecord:
        """Revoke an API key by its id; NotFound if there is none."""
        with self._write() as conn:
            revoked = ACCOUNTS.delete_api_key(conn, key_id)
            self.record(accounts_sql.key_change(DELETE, revoked))
            return revoked

    def login_failures(self, subjects: list[str], since: datetime) -> dict[str, LoginFailures]:
        """Failed-login counters whose window opened after `since`."""
        with self._connection() as conn:
            return ACCOUNTS.login_failures(conn, subjects, since)

    def record_login_failure(self, subject: str, now: datetime, since: datetime) -> LoginFailures:
        """Count one failed login in one INSERT … ON CONFLICT (concurrent failures all count)."""
        with self._connection() as conn:
            return ACCOUNTS.record_login_failure(conn, subject, now, since)

    def clear_login_failures(self, subject: str) -> None:
        """Forget a subject's failed logins."""
        with self._connection() as conn:
            ACCOUNTS.clear_login_failures(conn, subject)

    # -- idempotency keys ---------------------------------------------------------------------------------
    def claim_idempotency_key(self, record: IdempotencyRecord, lease_seconds: float) -> IdempotencyRecord | None:
        """Claim the key in one INSERT … ON CONFLICT (None), or the record already holding it."""
        with self._connection() as conn:
            return keys.pg_claim(conn, record, lease_seconds)

    def finish_idempotency_key(self, owner: str, endpoint: str, key: str, response: dict[str, Any]) -> None:
        """Store the response replayed to retries."""
        with self._connection() as conn:
            keys.pg_finish(conn, owner, endpoint, key, response)

    def release_idempotency_key(self, owner: str, endpoint: str, key: str) -> None:
        """Drop an unfinished claim."""
        with self._connection() as conn:
            keys.pg_release(conn, owner, endpoint, key)

    def purge_idempotency_keys(self, before: datetime) -> int:
        """Forget keys created before `before`."""
        with self._connection() as conn:
            return keys.pg_purge(conn, before)

