"""A change to an account stops its tokens in every process: two apps on one database, in both stores."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
from fastapi.testclient import TestClient

from api.app import create_app
from api.session import COOKIE
from api.settings import Settings
from geoserver.store import UserRecord, open_store
from tests.api import county
from tests.api.conftest import SECRET

BOUND = 5.0  # what "at once" may take here, on a loaded two-core machine: a bound, not a measurement


def _app(county_db: str) -> TestClient:
    settings = Settings(database=county_db, secret=SECRET, public_url="http://testserver")
    return TestClient(create_app(settings))


def _token(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": username, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _soon(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _change(county_db: str, catalog, username: str, **changes) -> None:
    """Change an account the way another process would: through its own store on the same database."""
    with open_store(county_db, catalog) as store:
        user = store.get_user(username)
        store.update_user(UserRecord(**{**vars(user), **changes}))


def test_a_token_carries_its_accounts_version(county_db):
    with _app(county_db) as a:
        token = _token(a, "leader-B")["Authorization"].split()[1]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="onemap")
    assert claims["sub"] == "leader-B" and isinstance(claims["ver"], int) and claims["ver"] >= 1


def test_disabling_elsewhere_stops_the_token_and_enabling_does_not_bring_it_back(county_db, catalog):
    with _app(county_db) as a, _app(county_db) as b:
        token = _token(a, "leader-B")
        assert b.get("/collections/events/items", headers=token).status_code == 200
        _change(county_db, catalog, "leader-B", disabled=True)
        assert _soon(lambda: b.get("/collections/events/items", headers=token).status_code == 401)
        assert _soon(lambda: a.get("/collections/events/items", headers=token).status_code == 401)
        r = b.post("/auth/token", data={"username": "leader-B", "password": county.PASSWORD})
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
        _change(county_db, catalog, "leader-B", disabled=False)
        assert _soon(lambda: b.post("/auth/token", data={"username": "leader-B", "password": county.PASSWORD})
                     .status_code == 200)
        assert b.get("/collections/events/items", headers=token).status_code == 401  # the old token stays dead


def test_a_regrant_elsewhere_retires_the_old_scope(county_db, catalog):
    with _app(county_db) as a, _app(county_db) as b:
        token = _token(a, "dept-religion")
        assert b.get("/collections/temples/items", headers=token).json()["numberMatched"] == 2
        _change(county_db, catalog, "dept-religion", townships=("A",))
        assert _soon(lambda: b.get("/collections/temples/items", headers=token).status_code == 401)
        fresh = _token(b, "dept-religion")
        assert a.get("/collections/temples/items", headers=fresh).json()["numberMatched"] == 1


def test_a_token_without_a_version_or_for_an_unknown_account_is_refused(county_db):
    now = int(time.time())
    base = {"iss": "onemap", "role": "admin", "iat": now, "exp": now + 600}
    unversioned = jwt.encode({**base, "sub": "admin"}, SECRET, algorithm="HS256")
    ghost = jwt.encode({**base, "sub": "ghost", "ver": 1}, SECRET, algorithm="HS256")
    with _app(county_db) as a:
        for token in (unversioned, ghost):
            r = a.get("/collections", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and r.json()["parameter"] == "Authorization"


def test_an_api_key_of_a_disabled_account_stops_at_once(county_db, catalog):
    with _app(county_db) as a:
        key = {"X-API-Key": county.LEADER_KEY}
        assert a.get("/collections/events/items", headers=key).status_code == 200
        _change(county_db, catalog, "leader-A", disabled=True)
        assert a.get("/collections/events/items", headers=key).status_code == 401
        _change(county_db, catalog, "leader-A", disabled=False)
        assert a.get("/collections/events/items", headers=key).status_code == 200


def test_disabling_through_one_app_stops_the_token_in_the_other(county_db):
    with _app(county_db) as a, _app(county_db) as b:
        admin = _token(a, "admin")
        token = _token(b, "worker-A1")
        assert b.get("/collections/events/items", headers=token).status_code == 200
        assert a.patch("/users/worker-A1", json={"disabled": True}, headers=admin).status_code == 200
        assert a.get("/collections/events/items", headers=token).status_code == 401  # at once where it was done
        assert _soon(lambda: b.get("/collections/events/items", headers=token).status_code == 401)
        assert a.patch("/users/worker-A1", json={"disabled": False}, headers=admin).status_code == 200


def test_a_key_revoked_through_one_app_is_refused_by_the_other_at_once(county_db):
    with _app(county_db) as a, _app(county_db) as b:
        admin = _token(a, "admin")
        issued = a.post("/api-keys", json={"username": "operator", "label": "two apps"}, headers=admin).json()
        key = {"X-API-Key": issued["key"]}
        assert b.get("/collections/events/items", headers=key).status_code == 200
        assert a.delete(f"/api-keys/{issued['id']}", headers=admin).status_code == 204
        assert b.get("/collections/events/items", headers=key).status_code == 401


def test_a_session_cookie_of_a_changed_account_browses_as_anyone(county_db):
    with _app(county_db) as a, _app(county_db) as b:
        r = b.post("/login", data={"username": "leader-B", "password": county.PASSWORD}, follow_redirects=False)
        assert r.status_code == 303
        cookie = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
        b.cookies.clear()
        assert b.get("/collections/events/items", headers=cookie).status_code == 200
        admin = _token(a, "admin")
        assert a.patch("/users/leader-B", json={"disabled": True}, headers=admin).status_code == 200
        assert _soon(lambda: b.get("/collections/events/items", headers=cookie).status_code == 404)
        assert a.patch("/users/leader-B", json={"disabled": False}, headers=admin).status_code == 200
        assert b.get("/collections/events/items", headers=cookie).status_code == 404  # the old cookie stays dead
