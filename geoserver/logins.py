"""Logins: a password is checked in the same time whether or not the account exists, and failed attempts
are limited per account and per client address, counted in the store (so every process sees them) and logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from geoserver import passwords
from geoserver.errors import TooManyRequests, Unauthorized
from geoserver.store import LoginFailures, Store, UserRecord

log = logging.getLogger("onemap.logins")

WRONG = "wrong username or password"


@dataclass(frozen=True)
class LoginLimits:
    """How many failed logins an account and a client address may have in a window (0: no limit)."""

    per_account: int = 10
    per_address: int = 100
    window_seconds: int = 900


def account_subject(username: str) -> str:
    """The failure-counter key of an account (whether or not it exists)."""
    return f"user:{username}"


def address_subject(address: str) -> str:
    """The failure-counter key of a client address."""
    return f"addr:{address}"


class LoginGate:
    """Checks a username and password against the store under the login limits."""

    def __init__(self, store: Store, limits: LoginLimits,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock

    def login(self, username: str, password: str, address: str,
              verify: Callable[[str, str], bool] | None = None) -> UserRecord:
        """The account if the password is right and no limit is reached.

        `verify(password, stored_hash)` checks the password (default: scrypt; HTTP Basic passes one that
        remembers passwords already proven right). An unknown username costs the same: one scrypt against a
        decoy hash (geoserver.passwords.verify_nobody).

        Raises:
            TooManyRequests: the account or the address has had too many failures in this window (the
                password is not even checked); `retry_after` says when the window closes.
            Unauthorized: wrong username or password (the same answer for both), or a disabled account.
        """
        now = self.clock()
        since = now - timedelta(seconds=self.limits.window_seconds)
        subjects = {account_subject(username): self.limits.per_account,
                    address_subject(address): self.limits.per_address}
        counted = self.store.login_failures(list(subjects), since)
        for subject, failures in counted.items():
            limit = subjects[subject]
            if limit and failures.failures >= limit:
                wait = self._retry_after(failures, now)
                log.warning("login as %r from %s refused: %d failed logins for %s; retry in %d s",
                            username, address, failures.failures, subject, wait)
                raise TooManyRequests(f"too many failed logins; try again in {wait} seconds", retry_after=wait,
                                      parameter="username")
        user = self.store.get_user(username)
        if user is None:
            passwords.verify_nobody(password)  # the same work as a wrong password
        elif (verify or passwords.verify_password)(password, user.password_hash):
            if user.disabled:
                raise Unauthorized(f"the account {username!r} is disabled", parameter="username")
            if account_subject(username) in counted:  # a write only when there is something to forget
                self.store.clear_login_failures(account_subject(username))
            return user
        self._failed(username, address, list(subjects), now, since)
        raise Unauthorized(WRONG, parameter="username")

    def _failed(self, username: str, address: str, subjects: list[str], now: datetime, since: datetime) -> None:
        counts = [self.store.record_login_failure(s, now, since).failures for s in subjects]
        log.warning("failed login as %r from %s (%d for the account, %d for the address in %d s)",
                    username, address, counts[0], counts[1], self.limits.window_seconds)

    def _retry_after(self, failures: LoginFailures, now: datetime) -> int:
        closes = failures.since + timedelta(seconds=self.limits.window_seconds)
        return max(1, math.ceil((closes - now).total_seconds()))
