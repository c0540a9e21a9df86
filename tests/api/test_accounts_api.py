"""/users and /api-keys: admins manage accounts and keys over HTTP; everyone else is refused; bad input is named."""

from __future__ import annotations

import pytest

from tests.api import county
from tests.api.conftest import login

NEW_PASSWORD = "a long new password"
ENDPOINTS = [("GET", "/users"), ("POST", "/users"), ("GET", "/users/leader-A"), ("PATCH", "/users/leader-A"),
             ("PUT", "/users/leader-A"), ("DELETE", "/users/leader-A"), ("POST", "/api-keys"),
             ("GET", "/api-keys"), ("GET", "/api-keys/0123456789abcdef"), ("DELETE", "/api-keys/0123456789abcdef")]


@pytest.fixture(scope="module")
def admin(client):
    """The admin's headers (one login for the module)."""
    return login(client, "admin")


def _create(client, admin, username: str, **fields):
    body = {"username": username, "password": NEW_PASSWORD, "role": "leader", "townships": ["A"], **fields}
    return client.post("/users", json=body, headers=admin)


def _token(client, username: str, password: str = NEW_PASSWORD) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _townships_seen(client, headers) -> set[str]:
    r = client.get("/collections/events/items", params={"limit": 100}, headers=headers)
    assert r.status_code == 200, r.text
    return {f["properties"]["township_code"] for f in r.json()["features"]}


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_only_an_admin_manages_accounts(client, method, path):
    assert client.request(method, path, json={}).status_code == 401
    for name in ("operator", "leader-A", "worker-A1"):
        r = client.request(method, path, json={}, headers=login(client, name))
        assert r.status_code == 403, (name, r.text)
    r = client.request(method, path, json={}, headers={"X-API-Key": county.LEADER_KEY})
    assert r.status_code == 403


def test_a_created_account_logs_in_and_sees_its_township(client, admin):
    r = _create(client, admin, "leader-new", display_name="新领导")
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/users/leader-new" and r.headers["etag"] == '"1"'
    body = r.json()
    assert body == {"username": "leader-new", "role": "leader", "display_name": "新领导", "townships": ["A"],
                    "grids": [], "department": None, "grants": [], "disabled": False, "version": 1}
    assert _townships_seen(client, _token(client, "leader-new")) == {"A"}
    assert client.get("/users/leader-new", headers=admin).json()["failed_logins"] == 0
    again = _create(client, admin, "leader-new")
    assert again.status_code == 409 and again.json()["parameter"] == "username"


def test_the_list_pages_and_filters_and_never_shows_a_password_hash(client, admin):
    r = client.get("/users", params={"role": "leader", "township": "B"}, headers=admin)
    assert r.status_code == 200
    assert [u["username"] for u in r.json()["users"]] == ["leader-B"]
    page = client.get("/users", params={"limit": 2, "offset": 1}, headers=admin).json()
    assert page["numberReturned"] == 2 and page["numberMatched"] >= 7
    assert "scrypt" not in client.get("/users", params={"limit": 1000}, headers=admin).text


def test_a_regrant_retires_the_old_token_and_the_new_login_sees_the_new_scope(client, admin):
    _create(client, admin, "leader-grow")
    old = _token(client, "leader-grow")
    assert _townships_seen(client, old) == {"A"}
    r = client.patch("/users/leader-grow", json={"townships": ["A", "B"]}, headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["townships"] == ["A", "B"] and r.headers["etag"] == '"2"'
    assert client.get("/collections/events/items", headers=old).status_code == 401
    assert _townships_seen(client, _token(client, "leader-grow")) == {"A", "B"}
    stale = client.patch("/users/leader-grow", json={"townships": ["B"]}, headers={**admin, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["parameter"] == "If-Match"


def test_disabling_stops_tokens_keys_and_logins_and_enabling_allows_logins_again(client, admin):
    _create(client, admin, "leader-off")
    token = _token(client, "leader-off")
    key = client.post("/api-keys", json={"username": "leader-off", "label": "tablet"}, headers=admin).json()["key"]
    assert client.get("/collections/events/items", headers={"X-API-Key": key}).status_code == 200
    assert client.delete("/users/leader-off", headers=admin).status_code == 204
    assert client.get("/users/leader-off", headers=admin).json()["disabled"] is True
    assert client.get("/collections/events/items", headers=token).status_code == 401
    assert client.get("/collections/events/items", headers={"X-API-Key": key}).status_code == 401
    assert client.post("/auth/token", data={"username": "leader-off", "password": NEW_PASSWORD}).status_code == 401
    assert client.patch("/users/leader-off", json={"disabled": False}, headers=admin).status_code == 200
    assert client.get("/collections/events/items", headers=token).status_code == 401  # old tokens stay dead
    assert client.get("/collections/events/items", headers={"X-API-Key": key}).status_code == 200
    assert _townships_seen(client, _token(client, "leader-off")) == {"A"}


def test_a_new_password_replaces_the_old_one_and_retires_tokens(client, admin):
    _create(client, admin, "worker-pw", role="worker", grids=["A2"])
    token = _token(client, "worker-pw")
    r = client.patch("/users/worker-pw", json={"password": "another good password"}, headers=admin)
    assert r.status_code == 200 and "password" not in r.json()
    assert client.post("/auth/token", data={"username": "worker-pw", "password": NEW_PASSWORD}).status_code == 401
    assert client.get("/collections/events/items", headers=token).status_code == 401
    _token(client, "worker-pw", "another good password")


def test_put_replaces_the_whole_account_keeping_the_password(client, admin):
    _create(client, admin, "dept-put", role="department", townships=["A", "B"], department="religion",
            grants=[{"layer": "grids", "action": "read", "townships": "*"}])
    r = client.put("/users/dept-put", json={"role": "leader", "townships": ["B"]}, headers=admin)
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("role", "townships", "department", "grants")} == {
        "role": "leader", "townships": ["B"], "department": None, "grants": []}
    assert _townships_seen(client, _token(client, "dept-put")) == {"B"}


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(client, admin):
    r = client.delete("/users/admin", headers=admin)
    assert r.status_code == 409 and r.json()["parameter"] == "disabled"
    r = client.patch("/users/admin", json={"role": "operator"}, headers=admin)
    assert r.status_code == 409 and r.json()["parameter"] == "role"
    assert client.get("/users", headers=admin).status_code == 200  # the admin's token still stands


def test_grants_reach_the_protected_layer_they_name(client, admin):
    _create(client, admin, "platform", role="external", townships=[],
            grants=[{"layer": "grids", "action": "read", "townships": ["B"]}])
    r = client.get("/collections/grids/items", headers=_token(client, "platform"))
    assert r.status_code == 200 and {f["properties"]["township_code"] for f in r.json()["features"]} == {"B"}


def test_unknown_accounts_and_keys_are_404(client, admin):
    for method, path in [("GET", "/users/nobody"), ("PATCH", "/users/nobody"), ("PUT", "/users/nobody"),
                         ("DELETE", "/users/nobody"), ("GET", "/api-keys/ffffffffffffffff"),
                         ("DELETE", "/api-keys/ffffffffffffffff")]:
        body = {"role": "leader", "townships": ["A"]} if method in ("PATCH", "PUT") else None
        assert client.request(method, path, json=body, headers=admin).status_code == 404, (method, path)
    r = client.post("/api-keys", json={"username": "nobody"}, headers=admin)
    assert r.status_code == 404 and r.json()["parameter"] == "username"
    assert client.get("/api-keys", params={"username": "nobody"}, headers=admin).status_code == 404


def test_a_key_is_shown_once_listed_without_secret_and_revoked_at_once(client, admin):
    r = client.post("/api-keys", json={"username": "leader-B", "label": "field tablet"}, headers=admin)
    assert r.status_code == 201
    issued = r.json()
    assert issued["key"].startswith("om_") and r.headers["location"] == f"/api-keys/{issued['id']}"
    listed = client.get("/api-keys", params={"username": "leader-B"}, headers=admin)
    assert [k["label"] for k in listed.json()["api_keys"]] == ["field tablet"]
    assert issued["key"] not in listed.text and issued["key"] not in client.get("/api-keys", headers=admin).text
    one = client.get(f"/api-keys/{issued['id']}", headers=admin).json()
    assert one == {k: issued[k] for k in ("id", "username", "label", "created_at")}
    key = {"X-API-Key": issued["key"]}
    assert _townships_seen(client, key) == {"B"}
    assert client.delete(f"/api-keys/{issued['id']}", headers=admin).status_code == 204
    assert client.get("/collections/events/items", headers=key).status_code == 401
    assert client.delete(f"/api-keys/{issued['id']}", headers=admin).status_code == 404


BAD_ACCOUNTS = [
    ({"townships": ["Z"]}, "townships"),  # no such township
    ({"role": "worker", "grids": ["B1"]}, "grids"),  # a grid outside the account's townships
    ({"grids": ["Q9"]}, "grids"),
    ({"role": "emperor"}, "role"),
    ({"role": "anonymous"}, "role"),
    ({"password": "short"}, "password"),
    ({"password": "p" * 1025}, "password"),
    ({"username": "has space"}, "username"),
    ({"username": "colon:name"}, "username"),
    ({"username": "u" * 65}, "username"),
    ({"colour": "red"}, "colour"),
    ({"password_hash": "scrypt$1$1$1$AA==$AA=="}, "password_hash"),
    ({"display_name": "x" * 1_000_000}, "display_name"),  # a megabyte body
    ({"townships": [str(i) for i in range(1001)]}, "townships"),
    ({"townships": [123]}, "townships.0"),
    ({"townships": "A"}, "townships"),
    ({"townships": ["A", "A"]}, "townships"),
    ({"role": "department"}, "department"),
    ({"role": "department", "department": "navy"}, "department"),
    ({"role": "leader", "townships": []}, "townships"),
    ({"grants": [{"layer": "secrets", "action": "read"}]}, "grants"),
    ({"grants": [{"layer": "grids", "action": "launch"}]}, "grants"),
    ({"grants": [{"layer": "grids", "action": "read", "townships": ["Z"]}]}, "grants"),
    ({"disabled": "maybe"}, "disabled"),
]


@pytest.mark.parametrize("fields, parameter", BAD_ACCOUNTS)
def test_bad_input_to_create_is_400_naming_the_field_and_creates_nothing(client, admin, fields, parameter):
    before = client.get("/users", headers=admin).json()["numberMatched"]
    body = {"username": "leader-bad", "password": NEW_PASSWORD, "role": "leader", "townships": ["A"], **fields}
    r = client.post("/users", json=body, headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter
    assert client.get("/users", headers=admin).json()["numberMatched"] == before


@pytest.mark.parametrize("fields, parameter", [f for f in BAD_ACCOUNTS if "username" not in f[0]])
def test_bad_input_to_change_is_400_naming_the_field_and_changes_nothing(client, admin, fields, parameter):
    before = client.get("/users/leader-A", headers=admin).json()
    r = client.patch("/users/leader-A", json=fields, headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter
    assert client.get("/users/leader-A", headers=admin).json() == before


@pytest.mark.parametrize("params, parameter", [
    ({"limit": "99999999999999999999999"}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
    ({"offset": str(2**63)}, "offset"), ({"role": "emperor"}, "role"), ({"township": "t" * 65}, "township"),
])
def test_bad_list_parameters_are_400_naming_them(client, admin, params, parameter):
    r = client.get("/users", params=params, headers=admin)
    assert r.status_code == 400 and r.json()["parameter"] == parameter


def test_other_bad_input_is_named(client, admin):
    checks = [
        (client.patch("/users/leader-A", json={}, headers={**admin, "If-Match": '"99999999999999999999999"'}),
         "If-Match"),
        (client.get("/users/" + "u" * 65, headers=admin), "username"),
        (client.post("/api-keys", json={"username": "leader-A", "label": "l" * 201}, headers=admin), "label"),
        (client.post("/api-keys", json={"username": "leader-A", "scopes": ["all"]}, headers=admin), "scopes"),
        (client.post("/api-keys", json={"username": 12}, headers=admin), "username"),
        (client.get("/api-keys", params={"username": "u" * 65}, headers=admin), "username"),
        (client.delete("/api-keys/" + "k" * 65, headers=admin), "key_id"),
    ]
    for r, parameter in checks:
        assert r.status_code == 400 and r.json()["parameter"] == parameter, r.text


def test_a_body_that_is_not_json_is_400(client, admin):
    r = client.post("/users", content=b"{not json", headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 400
