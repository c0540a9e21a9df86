"""Who sees what over OGC API Features: public layers, township scopes, 404 not 403, filters never widen."""

from __future__ import annotations

import pytest

from tests.api.conftest import login
from tests.api.county import EXTERNAL_KEY, LEADER_KEY

A_BOX = "100.0,33.0,100.5,33.5"
AB_BOX = "100.2,33.0,100.8,33.5"


def _codes(body: dict) -> set[str]:
    return {f["properties"]["township_code"] for f in body["features"]}


def test_anonymous_sees_public_collections_only(client):
    ids = {c["id"] for c in client.get("/collections").json()["collections"]}
    assert "townships" in ids and "villages" in ids
    assert not ids & {"events", "grids", "temples", "buildings"}
    assert client.get("/collections/events").status_code == 404
    assert client.get("/collections/events/items").status_code == 404
    assert client.get("/collections/events/queryables").status_code == 404


def test_leader_reads_own_township_only(client):
    h = login(client, "leader-A")
    body = client.get("/collections/events/items", params={"limit": 100}, headers=h).json()
    assert body["numberMatched"] == 10 and _codes(body) == {"A"}


def test_bbox_over_two_townships_counts_only_own(client):
    h = login(client, "leader-A")
    admin = client.get("/collections/events/items", params={"bbox": AB_BOX, "limit": 100},
                       headers=login(client, "admin")).json()
    assert _codes(admin) == {"A", "B"}
    body = client.get("/collections/events/items", params={"bbox": AB_BOX, "limit": 100}, headers=h).json()
    assert _codes(body) == {"A"}
    assert body["numberMatched"] == len([f for f in admin["features"] if f["properties"]["township_code"] == "A"])


def test_feature_of_another_township_is_404_not_403(client):
    admin = login(client, "admin")
    b_ids = [f["id"] for f in client.get("/collections/events/items", params={"township_code": "B"},
                                          headers=admin).json()["features"]]
    r = client.get(f"/collections/events/items/{b_ids[0]}", headers=login(client, "leader-A"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get(f"/collections/events/items/{b_ids[0]}", headers=admin).status_code == 200


@pytest.mark.parametrize("attack,matched", [
    ("township_code='B' OR 1=1", 10),
    ("township_code = 'B'", 0),
    ("NOT (township_code = 'A')", 0),
    ("township_code IN ('A','B') OR township_code <> 'A'", 10),
    ("NOT (township_code = 'X') AND 1 = 1", 10),
    ("title LIKE 'event B%'", 0),
])
def test_filter_cannot_widen_scope(client, attack, matched):
    # Every attack is valid CQL2 text, so it runs (200): inside the leader's township only.
    h = login(client, "leader-A")
    r = client.get("/collections/events/items", params={"filter": attack, "limit": 100}, headers=h)
    assert r.status_code == 200, r.text
    assert _codes(r.json()) <= {"A"}
    assert r.json()["numberMatched"] == matched


def test_collection_extent_covers_only_what_the_caller_sees(client):
    ext = client.get("/collections/events", headers=login(client, "leader-A")).json()["extent"]["spatial"]["bbox"][0]
    assert ext[2] <= 100.5  # no event of B (east of 100.5) shapes the leader's extent
    ext_admin = client.get("/collections/events", headers=login(client, "admin")).json()["extent"]["spatial"]["bbox"][0]
    assert ext_admin[2] > 100.5


def test_department_sees_its_thematic_layer(client):
    h = login(client, "dept-religion")
    ids = {c["id"] for c in client.get("/collections", headers=h).json()["collections"]}
    assert "temples" in ids and "events" not in ids
    assert client.get("/collections/temples/items", headers=h).json()["numberMatched"] == 2


def test_api_keys(client):
    r = client.get("/collections/grids/items", headers={"X-API-Key": EXTERNAL_KEY})
    assert r.status_code == 200 and r.json()["numberMatched"] == 4
    assert client.get("/collections/events/items", headers={"X-API-Key": EXTERNAL_KEY}).status_code == 404
    body = client.get("/collections/events/items", params={"limit": 100}, headers={"X-API-Key": LEADER_KEY}).json()
    assert _codes(body) == {"A"}
    assert client.get("/collections/grids/items", headers={"X-API-Key": "om_wrong"}).status_code == 401


def test_bad_credentials(client):
    r = client.post("/auth/token", data={"username": "leader-A", "password": "nope"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert client.get("/collections", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    tok = client.post("/auth/token", data={"username": "admin", "password": "onemap"}).json()
    assert tok["token_type"] == "bearer" and tok["expires_in"] > 0
