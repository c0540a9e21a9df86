"""HTTP Basic for GIS clients: the account's password or an API key, on reads, tiles, WMTS and writes."""

from __future__ import annotations

import base64
import dataclasses

import morecantile
import pytest

from geoserver.passwords import hash_password
from tests.api import county
from tests.api.conftest import login
from tests.tiles.mvt import decode

CHALLENGE = 'Basic realm="onemap", charset="UTF-8"'


def basic(username: str, password: str) -> dict[str, str]:
    """The Authorization header a GIS client sends for these credentials."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _event_codes(client, headers) -> tuple[int, set[str]]:
    r = client.get("/collections/events/items", params={"limit": 100}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["numberMatched"], {f["properties"]["township_code"] for f in body["features"]}


def _refused(r, detail: str | None = None) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == CHALLENGE
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["parameter"] == "Authorization"
    if detail:
        assert detail in r.json()["detail"]


def test_a_leader_with_his_password_reads_his_township_only(client):
    h = basic("leader-A", county.PASSWORD)
    assert _event_codes(client, h) == (10, {"A"})
    assert _event_codes(client, h) == (10, {"A"})  # again: from the remembered verification, same answer
    assert "events" in {c["id"] for c in client.get("/collections", headers=h).json()["collections"]}
    assert client.get("/collections/events").status_code == 404  # anonymous: still hidden


@pytest.mark.parametrize("username", ["apikey", "leader-A"])
def test_an_api_key_as_the_password_stands_for_its_owner(client, username):
    assert _event_codes(client, basic(username, county.LEADER_KEY)) == (10, {"A"})


def test_an_api_key_under_another_accounts_name_is_refused(client):
    _refused(client.get("/collections/events/items", headers=basic("leader-B", county.LEADER_KEY)))
    _refused(client.get("/collections/events/items", headers=basic("apikey", "om_no_such_key")))


def test_external_platform_key_over_basic_reads_its_granted_layer(client):
    h = basic("apikey", county.EXTERNAL_KEY)
    r = client.get("/collections/grids/items", headers=h)
    assert r.status_code == 200 and r.json()["numberMatched"] == 4
    assert client.get("/collections/events/items", headers=h).status_code == 404


def test_wrong_password_is_401_with_a_basic_challenge(client):
    _refused(client.get("/collections/events/items", headers=basic("leader-A", "not-the-password")),
             "wrong username or password")
    _refused(client.get("/collections/townships/items", headers=basic("leader-A", "")))  # even on a public layer


def test_unknown_user_gets_exactly_the_wrong_password_answer(client):
    wrong = client.get("/collections/events/items", headers=basic("leader-A", "not-the-password"))
    unknown = client.get("/collections/events/items", headers=basic("nobody-here", "not-the-password"))
    _refused(unknown)
    assert unknown.json() == wrong.json()
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]


@pytest.mark.parametrize("header", [
    "Basic",
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b":password-without-user").decode(),
])
def test_malformed_basic_credentials_are_401_naming_authorization(client, header):
    _refused(client.get("/collections/townships/items", headers={"Authorization": header}))


def test_an_unknown_scheme_names_both_accepted_ones(client):
    r = client.get("/collections/townships/items", headers={"Authorization": "Digest username=x"})
    assert r.status_code == 401 and r.json()["parameter"] == "Authorization"
    assert "Bearer" in r.json()["detail"] and "Basic" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_scheme_is_case_insensitive(client):
    h = basic("leader-A", county.PASSWORD)
    h["Authorization"] = h["Authorization"].replace("Basic", "basic")
    assert _event_codes(client, h) == (10, {"A"})


def test_a_changed_password_counts_at_once(client):
    store = client.app.state.store
    before = store.get_user("worker-A1")
    old, new = basic("worker-A1", county.PASSWORD), basic("worker-A1", "a-new-password")
    assert client.get("/collections/events/items", headers=old).status_code == 200  # now remembered
    store.put_users([dataclasses.replace(before, password_hash=hash_password("a-new-password"))])
    try:
        _refused(client.get("/collections/events/items", headers=old))
        assert client.get("/collections/events/items", headers=new).status_code == 200
    finally:
        store.put_users([before])
    assert client.get("/collections/events/items", headers=old).status_code == 200


def _points(mvt: bytes) -> int:
    """Events drawn in a tile (clusters count their points)."""
    return sum(f["properties"].get("point_count", 1) for f in decode(mvt).get("events", []))


def test_vector_tiles_with_basic_are_the_bearer_tiles(client):
    tile = morecantile.tms.get("WebMercatorQuad").tile(100.25, 33.25, 7)
    path = f"/collections/events/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}"
    assert client.get(path).status_code == 404
    with_basic = client.get(path, headers=basic("leader-A", county.PASSWORD))
    with_bearer = client.get(path, headers=login(client, "leader-A"))
    assert with_basic.status_code == 200 and with_basic.content == with_bearer.content
    admin = client.get(path, headers=basic("admin", county.PASSWORD))
    assert _points(with_basic.content) == 10 and _points(admin.content) == 20  # the z7 tile holds all of A and B


def test_wmts_capabilities_with_basic_list_the_callers_protected_layers(client):
    anonymous = client.get("/wmts/1.0.0/WMTSCapabilities.xml").text
    granted = client.get("/wmts/1.0.0/WMTSCapabilities.xml", headers=basic("apikey", county.EXTERNAL_KEY)).text
    assert "<ows:Identifier>grids</ows:Identifier>" in granted
    assert "<ows:Identifier>grids</ows:Identifier>" not in anonymous


def test_writes_with_basic(client):
    """A leader reports an event in his township with Basic; the admin deletes it with Basic."""
    event = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.75, 33.2]},
             "properties": {"title": "pothole by the bridge", "type": "road_damage", "status": "reported",
                            "priority": "normal", "reported_at": "2024-06-01T08:00:00Z", "reporter": "leader-B"}}
    r = client.post("/collections/events/items", json=event, headers={
        **basic("leader-B", county.PASSWORD), "Content-Type": "application/geo+json"})
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["township_code"] == "B"
    location = r.headers["location"].removeprefix("http://testserver")
    _refused(client.delete(location, headers=basic("admin", "not-the-password")))
    assert client.delete(location, headers=basic("admin", county.PASSWORD)).status_code == 204
    assert client.get(location, headers=basic("admin", county.PASSWORD)).status_code == 404
