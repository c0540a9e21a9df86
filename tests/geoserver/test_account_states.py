"""Each process's view of account versions: what it answers, how it catches up, in both stores."""

from __future__ import annotations

import time

from geoserver.account_states import AccountStates
from geoserver.changes import RESET, Change
from geoserver.store import AccountState, UserRecord, open_store


def _bump(store, name: str, **changes) -> UserRecord:
    user = store.get_user(name)
    return store.update_user(UserRecord(**{**vars(user), **changes}))


def test_a_token_stands_only_at_the_current_version_of_an_enabled_account(empty_store):
    empty_store.put_users([UserRecord("a", "leader", "h", townships=("A",))])
    states = AccountStates(empty_store)
    assert states.verdict("a", 1) is None  # not read yet
    states.refresh()
    assert states.verdict("a", 1) is True
    _bump(empty_store, "a", townships=("B",))
    assert states.verdict("a", 1) is True  # this view has not caught up yet
    states.refresh()
    assert (states.verdict("a", 1), states.verdict("a", 2)) == (False, True)
    _bump(empty_store, "a", disabled=True)
    states.load("a")
    assert (states.verdict("a", 2), states.verdict("a", 3)) == (False, False)
    states.load("ghost")
    assert states.verdict("ghost", 1) is None


def test_a_state_noted_here_is_not_undone_by_an_older_read(empty_store):
    empty_store.put_users([UserRecord("a", "leader", "h", townships=("A",))])
    states = AccountStates(empty_store)
    states.note("a", AccountState(5, True))  # as if written here after the store read below began
    states.refresh()
    assert states.verdict("a", 5) is False and states.verdict("a", 1) is False
    states.note("a", AccountState(4, False))
    assert states.verdict("a", 5) is False


def test_a_process_hears_an_account_changed_by_another_through_the_change_log(empty_store, catalog):
    empty_store.put_users([UserRecord("a", "leader", "h", townships=("A",))])
    location = str(empty_store.path) if empty_store.kind == "embedded" else empty_store.url
    with open_store(location, catalog) as other:  # a second process on the same database
        states = AccountStates(other)
        unsubscribe = other.changes.subscribe(states.on_change)
        other.changes.start()
        try:
            states.load("a")
            assert states.verdict("a", 1) is True
            _bump(empty_store, "a", disabled=True)
            deadline = time.monotonic() + 5
            while states.verdict("a", 1) is not False and time.monotonic() < deadline:
                time.sleep(0.02)
            assert states.verdict("a", 1) is False and states.verdict("a", 2) is False
        finally:
            other.changes.stop()
            unsubscribe()


def test_a_reset_of_the_feed_rereads_every_account(empty_store):
    empty_store.put_users([UserRecord("a", "leader", "h", townships=("A",)), UserRecord("b", "worker", "h")])
    states = AccountStates(empty_store)
    _bump(empty_store, "b", disabled=True)
    states.on_change(Change(0, "*", None, RESET))
    assert (states.verdict("a", 1), states.verdict("b", 1), states.verdict("b", 2)) == (True, False, False)
