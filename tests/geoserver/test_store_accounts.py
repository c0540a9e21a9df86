"""The Store contract, accounts: create, re-grant, disable, list; API keys; failed-login counters -- both stores."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from geoserver.errors import Conflict, NotFound
from geoserver.store import AccountState, ApiKeyRecord, UserRecord, gpkg, gpkg_migrations, migrate, open_store
from tests.conftest import STORE_KINDS

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _user(name: str, role: str = "leader", townships: tuple[str, ...] = ("A",), **kw) -> UserRecord:
    return UserRecord(name, role, "scrypt$stub", f"{name} display", townships, **kw)


def test_an_account_is_created_once_at_version_one(empty_store):
    stored = empty_store.add_user(_user("leader-a", extra={"grants": [["grids", "read", "*"]]}))
    assert stored == _user("leader-a", extra={"grants": [["grids", "read", "*"]]})
    assert (stored.auth_version, stored.disabled) == (1, False)
    with pytest.raises(Conflict) as err:
        empty_store.add_user(_user("leader-a", role="admin"))
    assert err.value.parameter == "username"
    assert empty_store.get_user("leader-a").role == "leader"


def test_an_update_bumps_the_version_and_refuses_a_stale_one(empty_store):
    first = empty_store.add_user(_user("leader-a"))
    regranted = empty_store.update_user(UserRecord(**{**vars(first), "townships": ("A", "B"), "grids": ("A1",)}))
    assert regranted.townships == ("A", "B") and regranted.grids == ("A1",) and regranted.auth_version == 2
    with pytest.raises(Conflict) as err:  # written from a copy read before the re-grant
        empty_store.update_user(UserRecord(**{**vars(first), "disabled": True}))
    assert err.value.parameter == "version"
    assert empty_store.get_user("leader-a") == regranted
    disabled = empty_store.update_user(UserRecord(**{**vars(regranted), "disabled": True}))
    assert disabled.disabled and disabled.auth_version == 3
    with pytest.raises(NotFound):
        empty_store.update_user(_user("nobody"))


def test_replacing_accounts_in_bulk_also_bumps_their_version(empty_store):
    empty_store.put_users([_user("a"), _user("b")])
    empty_store.put_users([_user("a", townships=("B",))])
    assert empty_store.account_states() == {"a": AccountState(2, False), "b": AccountState(1, False)}
    assert empty_store.get_user("a").townships == ("B",)


def test_accounts_are_listed_in_name_order_by_page_role_and_township(empty_store):
    empty_store.put_users([_user("w-2", "worker", ("B",)), _user("w-1", "worker", ("A",)),
                           _user("leader", "leader", ("A", "B")), _user("admin", "admin", ())])
    users, total = empty_store.list_users()
    assert [u.username for u in users] == ["admin", "leader", "w-1", "w-2"] and total == 4
    users, total = empty_store.list_users(limit=2, offset=1)
    assert [u.username for u in users] == ["leader", "w-1"] and total == 4
    users, total = empty_store.list_users(role="worker")
    assert [u.username for u in users] == ["w-1", "w-2"] and total == 2
    users, total = empty_store.list_users(township="B")
    assert [u.username for u in users] == ["leader", "w-2"] and total == 2
    users, total = empty_store.list_users(role="worker", township="A", limit=0)
    assert users == [] and total == 1


def test_the_account_states_say_version_and_disabled(empty_store):
    user = empty_store.add_user(_user("a"))
    empty_store.update_user(UserRecord(**{**vars(user), "disabled": True}))
    empty_store.add_user(_user("b"))
    assert empty_store.account_states() == {"a": AccountState(2, True), "b": AccountState(1, False)}


def test_api_keys_are_listed_without_secrets_and_revoked_by_id(empty_store):
    empty_store.put_users([_user("a"), _user("b")])
    first = ApiKeyRecord("0123456789abcdef0123", "a", "tablet", created_at=T0)
    empty_store.put_api_key(first)
    empty_store.put_api_key(ApiKeyRecord("fedcba9876543210fedc", "b", "platform", created_at=T0 + timedelta(1)))
    assert first.key_id == "0123456789abcdef"
    assert [k.key_id for k in empty_store.list_api_keys()] == ["0123456789abcdef", "fedcba9876543210"]
    assert [k.label for k in empty_store.list_api_keys("b")] == ["platform"]
    assert empty_store.list_api_keys("a")[0].created_at == T0
    assert empty_store.list_api_keys("nobody") == []
    revoked = empty_store.delete_api_key("0123456789abcdef")
    assert revoked == first and revoked.created_at == T0
    assert empty_store.get_api_key("0123456789abcdef0123") is None
    with pytest.raises(NotFound) as err:
        empty_store.delete_api_key("0123456789abcdef")
    assert err.value.parameter == "key_id"
    with pytest.raises(NotFound):
        empty_store.put_api_key(ApiKeyRecord("00", "nobody"))


def test_failed_logins_are_counted_in_a_window_and_cleared(empty_store):
    since = T0 - timedelta(minutes=15)
    for minute in range(3):
        counted = empty_store.record_login_failure("user:a", T0 + timedelta(minutes=minute), since)
    assert (counted.failures, counted.since) == (3, T0)
    empty_store.record_login_failure("addr:10.0.0.1", T0, since)
    found = empty_store.login_failures(["user:a", "addr:10.0.0.1", "user:b"], since)
    assert {s: f.failures for s, f in found.items()} == {"user:a": 3, "addr:10.0.0.1": 1}
    later = T0 + timedelta(minutes=20)  # the window that opened at T0 has lapsed
    assert empty_store.login_failures(["user:a"], later - timedelta(minutes=15)) == {}
    restarted = empty_store.record_login_failure("user:a", later, later - timedelta(minutes=15))
    assert (restarted.failures, restarted.since) == (1, later)
    empty_store.clear_login_failures("user:a")
    assert set(empty_store.login_failures(["user:a", "addr:10.0.0.1"], since)) == {"addr:10.0.0.1"}


def test_failures_recorded_at_once_from_many_threads_all_count(empty_store):
    def fail() -> None:
        for _ in range(5):
            empty_store.record_login_failure("user:a", T0, T0 - timedelta(minutes=15))

    threads = [threading.Thread(target=fail) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert empty_store.login_failures(["user:a"], T0 - timedelta(minutes=15))["user:a"].failures == 30


# -- a county made by the release before accounts could be disabled --------------------------------------

OLD_ROWS = (
    "INSERT INTO users (username, role, password_hash, townships) VALUES ('leader-a', 'leader', 'h', {towns})",
    "INSERT INTO api_keys (key_hash, username, label) VALUES ('abcdef0123456789abcdef', 'leader-a', 'old')",
)
PG_MIGRATION, GPKG_STEP = 7, 6  # the steps that made accounts disable-able


def _old_database(kind: str, catalog, tmp_path, pg_url: str, name: str) -> str:
    """A database set up by the steps before accounts could be disabled, holding one account and its key."""
    if kind == "embedded":
        path = tmp_path / "old.gpkg"
        conn = sqlite3.connect(path, isolation_level=None)
        gpkg.register_functions(conn)
        conn.execute("BEGIN IMMEDIATE")
        gpkg_migrations.upgrade(conn, catalog, upto=GPKG_STEP - 1)
        for statement in OLD_ROWS:
            conn.execute(statement.format(towns="'[\"A\"]'"))
        conn.execute("COMMIT")
        conn.close()
        return str(path)
    server = pg_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{server}/{name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz "
                     "NOT NULL DEFAULT now())")
        for migration in migrate.migrations():
            if migration.version < PG_MIGRATION:
                conn.execute(migration.sql())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [migration.version])
        for statement in OLD_ROWS:
            conn.execute(statement.format(towns="'{A}'"))
    return f"{server}/{name}"


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_an_older_database_is_upgraded_keeping_its_accounts_and_keys(kind, catalog, tmp_path, fresh_postgis_url):
    name = f"onemap_old_{uuid.uuid4().hex[:8]}"
    store = open_store(_old_database(kind, catalog, tmp_path, fresh_postgis_url, name), catalog)
    try:
        store.open()
        store.initialize()
        user = store.get_user("leader-a")
        assert (user.townships, user.auth_version, user.disabled) == (("A",), 1, False)
        assert [(k.key_id, k.label) for k in store.list_api_keys("leader-a")] == [("abcdef0123456789", "old")]
        store.update_user(UserRecord(**{**vars(user), "disabled": True}))
        assert store.account_states() == {"leader-a": AccountState(2, True)}
    finally:
        store.close()
        if kind == "postgis":
            admin = fresh_postgis_url.rsplit("/", 1)[0] + "/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
