"""Which bearer tokens still stand: each process's view of every account's auth_version and disabled flag.

A token names the auth_version of its account when it was issued. Every change to an account (role,
townships, grids, grants, password, disabled) bumps the version in the store, so the token stops working
in every process as soon as that process's view has caught up. The check on each request is a dict lookup
(no I/O, on the event loop); the view follows the change log (every account write appends a `users` row),
so another process's change arrives as fast as the feed brings it (PostgreSQL NOTIFY; GeoPackage polling).
"""

from __future__ import annotations

import threading

from geoserver.changes import RESET, Change
from geoserver.store import AccountState, Store
from geoserver.store.accounts_sql import USERS_LOG


class AccountStates:
    """username -> AccountState, kept fresh from the store; `verdict` is what the token check asks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._states: dict[str, AccountState] = {}
        self._lock = threading.Lock()

    def verdict(self, username: str, version: int) -> bool | None:
        """True if a token issued under `version` still stands, False if not, None if the account is not known
        here yet (then `load` it and ask again)."""
        state = self._states.get(username)
        if state is None:
            return None
        if version != state.version:
            # Older: the account changed since. Newer: another process changed it and this view lags (a
            # token cannot be issued under a version that was never stored); the next refresh catches up.
            return version > state.version
        return not state.disabled

    def current(self, username: str) -> AccountState | None:
        """The account's state as this process knows it (None: not known here yet)."""
        return self._states.get(username)

    def note(self, username: str, state: AccountState | None) -> None:
        """Take in one account's state (after a write or a read here); versions only move forward."""
        with self._lock:
            if state is None:
                self._states.pop(username, None)
                return
            known = self._states.get(username)
            if known is None or state.version >= known.version:
                self._states[username] = state

    def load(self, username: str) -> None:
        """Read one account's state from the store (I/O: call it off the event loop)."""
        user = self.store.get_user(username)
        self.note(username, None if user is None else AccountState(user.auth_version, user.disabled))

    def refresh(self) -> None:
        """Read every account's state from the store (I/O), keeping any newer state noted meanwhile."""
        fresh = self.store.account_states()
        with self._lock:
            for name, known in self._states.items():
                if name in fresh and known.version > fresh[name].version:
                    fresh[name] = known
            self._states = fresh

    def on_change(self, change: Change) -> None:
        """Consume the change feed: re-read an account written anywhere; after a `reset`, re-read them all."""
        if change.op == RESET:
            self.refresh()
        elif change.layer_id == USERS_LOG and change.properties.get("username"):
            self.load(change.properties["username"])
