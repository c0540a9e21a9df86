"""Logins against both stores: one scrypt whether or not the account exists, limits per account and address."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from geoserver import passwords
from geoserver.errors import TooManyRequests, Unauthorized
from geoserver.logins import LoginGate, LoginLimits
from geoserver.passwords import DECOY_HASH, hash_password
from geoserver.store import UserRecord

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
RIGHT = "correct horse battery"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def accounts(empty_store):
    """A store with two accounts, one of them disabled."""
    h = hash_password(RIGHT)
    empty_store.put_users([UserRecord("leader-a", "leader", h, townships=("A",)),
                           UserRecord("gone", "worker", h, disabled=True)])
    return empty_store


def _gate(store, clock=None, **limits) -> LoginGate:
    return LoginGate(store, LoginLimits(**limits), clock or Clock())


def test_an_unknown_user_costs_one_scrypt_like_a_wrong_password_and_gets_the_same_answer(accounts, monkeypatch):
    checked: list[str] = []

    def spy(password: str, stored: str) -> bool:
        checked.append(stored)
        return real_verify(password, stored)

    real_verify = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", spy)
    gate = _gate(accounts)
    with pytest.raises(Unauthorized) as unknown:
        gate.login("nobody", RIGHT, "10.0.0.1")
    with pytest.raises(Unauthorized) as wrong:
        gate.login("leader-a", "guess", "10.0.0.1")
    assert checked == [DECOY_HASH, accounts.get_user("leader-a").password_hash]
    assert (unknown.value.message, unknown.value.parameter) == (wrong.value.message, wrong.value.parameter)
    # The dummy costs what a real hash costs: the same scrypt parameters as every new password.
    assert DECOY_HASH.split("$")[:4] == hash_password("anything").split("$")[:4]
    assert gate.login("leader-a", RIGHT, "10.0.0.1").username == "leader-a"


def test_after_the_account_limit_even_the_right_password_waits_for_the_window(accounts):
    clock = Clock()
    gate = _gate(accounts, clock, per_account=3, window_seconds=600)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            gate.login("leader-a", "guess", "10.0.0.1")
        clock.now += timedelta(seconds=10)
    with pytest.raises(TooManyRequests) as err:
        gate.login("leader-a", RIGHT, "10.0.0.2")  # another address does not help
    assert err.value.retry_after == 600 - 30 and err.value.parameter == "username"
    clock.now = T0 + timedelta(seconds=600)
    assert gate.login("leader-a", RIGHT, "10.0.0.1").username == "leader-a"


def test_a_success_forgets_the_accounts_failures(accounts):
    gate = _gate(accounts, per_account=3)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            gate.login("leader-a", "guess", "10.0.0.1")
    gate.login("leader-a", RIGHT, "10.0.0.1")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            gate.login("leader-a", "guess", "10.0.0.1")
    assert gate.login("leader-a", RIGHT, "10.0.0.1").username == "leader-a"


def test_the_address_limit_counts_guesses_at_every_account_and_at_none(accounts):
    gate = _gate(accounts, per_account=100, per_address=4)
    for name in ("leader-a", "nobody", "admin", "root"):
        with pytest.raises(Unauthorized):
            gate.login(name, "guess", "10.0.0.9")
    with pytest.raises(TooManyRequests):
        gate.login("leader-a", RIGHT, "10.0.0.9")
    assert gate.login("leader-a", RIGHT, "10.0.0.1").username == "leader-a"  # another address still may


def test_unknown_accounts_are_limited_like_known_ones(accounts):
    gate = _gate(accounts, per_account=2)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            gate.login("nobody", "guess", "10.0.0.1")
    with pytest.raises(TooManyRequests):
        gate.login("nobody", "guess", "10.0.0.1")


def test_a_limit_of_zero_means_no_limit(accounts):
    gate = _gate(accounts, per_account=0, per_address=0)
    for _ in range(12):
        with pytest.raises(Unauthorized):
            gate.login("leader-a", "guess", "10.0.0.1")
    assert gate.login("leader-a", RIGHT, "10.0.0.1").username == "leader-a"


def test_a_disabled_account_cannot_log_in_even_with_its_password(accounts):
    with pytest.raises(Unauthorized) as err:
        _gate(accounts).login("gone", RIGHT, "10.0.0.1")
    assert "disabled" in err.value.message


def test_failures_and_refusals_are_logged_with_account_address_and_count(accounts, caplog):
    gate = _gate(accounts, per_account=2)
    with caplog.at_level(logging.WARNING, logger="onemap.logins"):
        for _ in range(2):
            with pytest.raises(Unauthorized):
                gate.login("leader-a", "guess", "10.0.0.7")
        with pytest.raises(TooManyRequests):
            gate.login("leader-a", "guess", "10.0.0.7")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all("'leader-a'" in m and "10.0.0.7" in m for m in messages)
    assert "2 for the account" in messages[1] and "refused" in messages[2]
