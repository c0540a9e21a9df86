"""OGC API Features Part 4 on events: create with spatial join, ETag/If-Match, scope on writes, bad bodies."""

from __future__ import annotations

import pytest

from tests.api.conftest import login

GJ = {"Content-Type": "application/geo+json"}


def _event(lon=100.1, lat=33.2, **props):
    p = {"title": "pothole", "type": "road_damage", "reported_at": "2024-06-01T08:00:00Z", **props}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": p}


@pytest.fixture(scope="module")
def worker(client):
    return {**login(client, "worker-A1"), **GJ}


def test_worker_creates_event_with_township_and_grid_filled(client, worker):
    r = client.post("/collections/events/items", json=_event(), headers=worker)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["properties"]["township_code"] == "A" and body["properties"]["grid_code"] == "A1"
    got = client.get(r.headers["location"].replace("http://testserver", ""), headers=worker)
    assert got.status_code == 200 and got.headers["etag"] == r.headers["etag"]


def test_worker_cannot_create_outside_township(client, worker):
    before = client.get("/collections/events/items", headers=login(client, "admin")).json()["numberMatched"]
    r = client.post("/collections/events/items", json=_event(lon=100.8), headers=worker)
    assert r.status_code == 403
    after = client.get("/collections/events/items", headers=login(client, "admin")).json()["numberMatched"]
    assert after == before


def test_if_match_gives_412_on_a_stale_etag(client, worker):
    created = client.post("/collections/events/items", json=_event(title="to edit"), headers=worker)
    url = created.headers["location"].replace("http://testserver", "")
    etag = created.headers["etag"]
    r1 = client.put(url, json=_event(title="edited", priority="low"), headers={**worker, "If-Match": etag})
    assert r1.status_code == 200 and r1.json()["properties"]["title"] == "edited"
    r2 = client.put(url, json=_event(title="late edit"), headers={**worker, "If-Match": etag})
    assert r2.status_code == 412
    assert client.get(url, headers=worker).json()["properties"]["title"] == "edited"
    r3 = client.patch(url, json={"properties": {"priority": "high"}},
                      headers={**worker, "If-Match": r1.headers["etag"]})
    assert r3.status_code == 200 and r3.json()["properties"]["priority"] == "high"


def test_delete_returns_204_without_body(client):
    admin = {**login(client, "admin"), **GJ}
    created = client.post("/collections/events/items", json=_event(title="to delete"), headers=admin)
    url = created.headers["location"].replace("http://testserver", "")
    assert client.delete(url, headers={"Authorization": admin["Authorization"]}, ).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


def test_worker_may_not_delete(client, worker):
    created = client.post("/collections/events/items", json=_event(title="mine"), headers=worker)
    url = created.headers["location"].replace("http://testserver", "")
    assert client.delete(url, headers=worker).status_code == 403


@pytest.mark.parametrize("body,parameter", [
    ({"type": "Feature", "geometry": None, "properties": {"title": "x", "type": "garbage",
                                                           "reported_at": "2024-06-01T00:00:00Z"}}, "geometry"),
    (_event(type="not-a-type"), "type"),
    (_event(nosuch=1), "nosuch"),
    (_event(reported_at="soon"), "reported_at"),
    ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[100, 33], [100.1, 33], [100, 33.1],
                                                                           [100, 33]]]},
      "properties": {"title": "x", "type": "garbage", "reported_at": "2024-06-01T00:00:00Z"}}, "geometry"),
    ({"hello": "world"}, "body"),
])
def test_invalid_body_is_400_and_writes_nothing(client, body, parameter):
    admin = {**login(client, "admin"), **GJ}
    before = client.get("/collections/events/items", headers=admin).json()["numberMatched"]
    r = client.post("/collections/events/items", json=body, headers=admin)
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter or parameter in r.json()["detail"]
    assert client.get("/collections/events/items", headers=admin).json()["numberMatched"] == before


def test_anonymous_cannot_write(client):
    # Townships are public to read; writing them needs a login (401 with a challenge, not 403: an admin may).
    r = client.post("/collections/townships/items", json=_event(), headers=GJ)
    assert r.status_code == 401 and r.headers["www-authenticate"]
    assert r.json()["parameter"] == "Authorization"
    assert client.post("/collections/events/items", json=_event(), headers=GJ).status_code == 404
