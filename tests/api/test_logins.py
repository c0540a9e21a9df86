"""POST /auth/token under attack: failed logins limited per account and per address (429 + Retry-After),
across processes, in both stores."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.api.conftest import SECRET


def _client(county_db: str, address: str, **settings) -> TestClient:
    app = create_app(Settings(database=county_db, secret=SECRET, public_url="http://testserver", **settings))
    return TestClient(app, client=(address, 50000))


def _login(client: TestClient, username: str, password: str):
    return client.post("/auth/token", data={"username": username, "password": password})


def test_thirty_wrong_passwords_then_the_right_one_is_429_with_retry_after(county_db):
    with _client(county_db, "10.0.1.1", login_account_limit=10, login_window_seconds=900) as c:
        answers = [_login(c, "leader-B", f"guess-{i}").status_code for i in range(30)]
        assert answers == [401] * 10 + [429] * 20
        r = _login(c, "leader-B", county.PASSWORD)
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert 0 < int(r.headers["retry-after"]) <= 900
        assert r.json()["parameter"] == "username"


def test_the_address_limit_holds_across_accounts(county_db):
    with _client(county_db, "10.0.2.2", login_address_limit=5) as c:
        for name in ("operator", "admin", "nobody", "root", "leader-A"):
            assert _login(c, name, "guess").status_code == 401
        assert _login(c, "operator", county.PASSWORD).status_code == 429
    with _client(county_db, "10.0.2.3", login_address_limit=5) as other:
        assert _login(other, "operator", county.PASSWORD).status_code == 200


def test_a_limit_reached_through_one_process_holds_in_another(county_db):
    with _client(county_db, "10.0.3.1", login_account_limit=3) as a, \
            _client(county_db, "10.0.3.2", login_account_limit=3) as b:
        for _ in range(3):
            assert _login(a, "dept-religion", "guess").status_code == 401
        assert _login(b, "dept-religion", county.PASSWORD).status_code == 429


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(county_db):
    with _client(county_db, "10.0.4.1") as c:
        unknown, wrong = _login(c, "no-such-user", "guess"), _login(c, "worker-A1", "guess")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


@pytest.mark.parametrize("field, value", [("username", "u" * 257), ("password", "p" * 1025)])
def test_an_oversized_username_or_password_is_refused_naming_it(county_db, field, value):
    with _client(county_db, "10.0.5.1") as c:
        r = c.post("/auth/token", data={"username": "admin", "password": "x", field: value})
    assert r.status_code == 400 and r.json()["parameter"] == field


def _basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_basic_credentials_count_against_the_same_limits(county_db):
    with _client(county_db, "10.0.6.1", login_account_limit=3) as c:
        for _ in range(3):
            r = c.get("/collections/events/items", headers=_basic("external", "guess"))
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        r = c.get("/collections/events/items", headers=_basic("external", county.PASSWORD))
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert _login(c, "external", county.PASSWORD).status_code == 429  # one count for both ways in


def test_a_gis_client_already_logged_in_with_basic_is_not_locked_out_by_a_guesser(county_db):
    with _client(county_db, "10.0.7.1", login_account_limit=3) as qgis, \
            _client(county_db, "10.0.7.2", login_account_limit=3) as guesser:
        right = _basic("operator", county.PASSWORD)
        assert qgis.get("/collections/events/items", headers=right).status_code == 200
        for _ in range(3):
            assert guesser.get("/collections/events/items", headers=_basic("operator", "guess")).status_code == 401
        assert guesser.get("/collections/events/items", headers=right).status_code == 429
        assert qgis.get("/collections/events/items", headers=right).status_code == 200


def test_the_login_form_says_when_to_try_again(county_db):
    with _client(county_db, "10.0.8.1", login_account_limit=2) as c:
        for _ in range(2):
            assert c.post("/login", data={"username": "form-guesser", "password": "guess"}).status_code == 401
        r = c.post("/login", data={"username": "form-guesser", "password": "guess"}, headers={"Accept": "text/html"})
    assert r.status_code == 429 and r.headers["content-type"].startswith("text/html")
    assert int(r.headers["retry-after"]) > 0 and "try again in" in r.text
