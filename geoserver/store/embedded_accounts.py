"""The embedded store's accounts, API keys, failed-login counters and idempotency keys (the SQL is in
accounts_sql.py and idempotency_sql.py); a part of EmbeddedStore, which supplies its connections."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from geoserver.changes import DELETE, INSERT, UPDATE
from geoserver.store import accounts_sql as accounts
from geoserver.store import idempotency_sql as keys
from geoserver.store.records import AccountState, ApiKeyRecord, IdempotencyRecord, LoginFailures, UserRecord

ACCOUNTS = accounts.SQLITE


class EmbeddedAccounts:
    """Mixed into EmbeddedStore: uses its `_read`, `_write` and `record`."""

    # -- accounts -----------------------------------------------------------------------------------------
    def put_users(self, users: Iterable[UserRecord]) -> None:
        """Insert or replace accounts by username (a replaced account's auth_version goes up)."""
        with self._write() as conn:
            rows = list(users)
            ACCOUNTS.put_users(conn, rows)
            for user in rows:
                self.record(accounts.user_change(UPDATE, user.username))

    def get_user(self, username: str) -> UserRecord | None:
        """One account by name, or None."""
        with self._read() as conn:
            return ACCOUNTS.get_user(conn, username)

    def add_user(self, user: UserRecord) -> UserRecord:
        """Create an account; Conflict if the name is taken."""
        with self._write() as conn:
            self.record(accounts.user_change(INSERT, user.username))
            return ACCOUNTS.add_user(conn, user)

    def update_user(self, user: UserRecord) -> UserRecord:
        """Replace an account if it is still at `user.auth_version`; bumps the version."""
        with self._write() as conn:
            self.record(accounts.user_change(UPDATE, user.username))
            return ACCOUNTS.update_user(conn, user)

    def list_users(self, *, role: str | None = None, township: str | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[list[UserRecord], int]:
        """A page of accounts in name order, and how many match."""
        with self._read() as conn:
            return ACCOUNTS.list_users(conn, role, township, limit, offset)

    def account_states(self) -> dict[str, AccountState]:
        """auth_version and disabled of every account."""
        with self._read() as conn:
            return ACCOUNTS.account_states(conn)

    def put_api_key(self, key: ApiKeyRecord) -> None:
        """Store (or rebind) an API key by its hash; NotFound if its user does not exist."""
        with self._write() as conn:
            ACCOUNTS.put_api_key(conn, key, datetime.now(UTC))
            self.record(accounts.key_change(INSERT, key))

    def get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """An API key by hash, or None."""
        with self._read() as conn:
            return ACCOUNTS.get_api_key(conn, key_hash)

    def list_api_keys(self, username: str | None = None) -> list[ApiKeyRecord]:
        """Every API key (of one account), oldest first."""
        with self._read() as conn:
            return ACCOUNTS.list_api_keys(conn, username)

    def delete_api_key(self, key_id: str) -> ApiKeyRecord:
        """Revoke an API key by its id; NotFound if there is none."""
        with self._write() as conn:
            revoked = ACCOUNTS.delete_api_key(conn, key_id)
            self.record(accounts.key_change(DELETE, revoked))
            return revoked

    def login_failures(self, subjects: list[str], since: datetime) -> dict[str, LoginFailures]:
        """Failed-login counters whose window opened after `since`."""
        with self._read() as conn:
            return ACCOUNTS.login_failures(conn, subjects, since)

    def record_login_failure(self, subject: str, now: datetime, since: datetime) -> LoginFailures:
        """Count one failed login under the file's write lock."""
        with self._write() as conn:
            return ACCOUNTS.record_login_failure(conn, subject, now, since)

    def clear_login_failures(self, subject: str) -> None:
        """Forget a subject's failed logins."""
        with self._write() as conn:
            ACCOUNTS.clear_login_failures(conn, subject)

    # -- idempotency keys ---------------------------------------------------------------------------------
    def claim_idempotency_key(self, record: IdempotencyRecord, lease_seconds: float) -> IdempotencyRecord | None:
        """Claim the key under the write lock (None), or the record already holding it."""
        with self._write() as conn:
            return keys.sqlite_claim(conn, record, lease_seconds)

    def finish_idempotency_key(self, owner: str, endpoint: str, key: str, response: dict[str, Any]) -> None:
        """Store the response replayed to retries."""
        with self._write() as conn:
            keys.sqlite_finish(conn, owner, endpoint, key, response)

    def release_idempotency_key(self, owner: str, endpoint: str, key: str) -> None:
        """Drop an unfinished claim."""
        with self._write() as conn:
            keys.sqlite_release(conn, owner, endpoint, key)

    def purge_idempotency_keys(self, before: datetime) -> int:
        """Forget keys created before `before`."""
        with self._write() as conn:
            return keys.sqlite_purge(conn, before)

