"""Write rules on events: who writes which layer, and the dispatch state no PATCH, PUT or POST may set."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import login

GJ = {"Content-Type": "application/geo+json"}
ITEMS = "/collections/events/items"


def _event(lon=100.1, lat=33.2, **props):
    p = {"title": "pothole", "type": "road_damage", "reported_at": "2024-06-01T08:00:00Z", **props}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": p}


@pytest.fixture(scope="module")
def worker(client):
    return {**login(client, "worker-A1"), **GJ}


@pytest.fixture(scope="module")
def admin(client):
    return {**login(client, "admin"), **GJ}


def _reported_event_in_a(client, admin) -> tuple[str, dict]:
    """The URL and body of one loaded event of township A still in state `reported`."""
    body = client.get(ITEMS, params={"township_code": "A", "status": "reported", "limit": 1}, headers=admin).json()
    feature = body["features"][0]
    return f"{ITEMS}/{feature['id']}", feature


def _refused(r, prop: str, verb: str) -> str:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["parameter"] == prop
    detail = r.json()["detail"]
    assert detail.startswith(f"{prop} is set by the dispatch actions") and detail.endswith(f"not by {verb}")
    return detail


def test_a_grid_workers_patch_of_status_to_closed_is_409_naming_status_and_the_actions(client, worker, admin):
    url, before = _reported_event_in_a(client, admin)
    r = client.patch(url, json={"properties": {"status": "closed"}}, headers=worker)
    detail = _refused(r, "status", "PATCH")
    assert f"POST /events/{before['id']}/actions/{{action}}" in detail
    after = client.get(url, headers=worker)
    assert after.json()["properties"]["status"] == "reported"
    assert after.headers["etag"] == client.get(url, headers=admin).headers["etag"]


def test_admin_is_refused_a_bare_status_patch_too(client, admin):
    url, _ = _reported_event_in_a(client, admin)
    _refused(client.patch(url, json={"properties": {"status": "accepted"}}, headers=admin), "status", "PATCH")
    _refused(client.patch(url, json={"properties": {"closed_at": "2024-07-01T00:00:00Z"}}, headers=admin),
             "closed_at", "PATCH")
    r = client.patch(url, json={"properties": {"due_state": "overdue"}}, headers=admin)
    assert r.status_code == 409 and r.json()["parameter"] == "due_state"
    assert r.json()["detail"].startswith("due_state is set by the deadline job")
    after = client.get(url, headers=admin).json()["properties"]
    assert after["closed_at"] is None and after["due_state"] is None


def test_a_put_changing_the_assignee_is_409_and_changes_nothing(client, worker, admin):
    url, before = _reported_event_in_a(client, admin)
    props = {**before["properties"], "title": "renamed", "assignee": "worker-A2"}
    r = client.put(url, json={"type": "Feature", "geometry": before["geometry"], "properties": props},
                   headers=worker)
    _refused(r, "assignee", "PUT")
    assert client.get(url, headers=worker).json()["properties"] == before["properties"]


def test_a_worker_patches_title_and_description_in_his_township(client, worker, admin):
    url, before = _reported_event_in_a(client, admin)
    r = client.patch(url, json={"properties": {"title": "deep pothole", "description": "near the school"}},
                     headers=worker)
    assert r.status_code == 200, r.text
    props = client.get(url, headers=worker).json()["properties"]
    assert props["title"] == "deep pothole" and props["description"] == "near the school"
    assert props["status"] == "reported" and props["reporter"] == before["properties"]["reporter"]


def test_a_put_that_keeps_or_leaves_out_the_dispatch_state_keeps_it(client, worker, admin):
    url, before = _reported_event_in_a(client, admin)
    same = client.put(url, json={"type": "Feature", "geometry": before["geometry"],
                                 "properties": {**before["properties"], "title": "kept state"}}, headers=worker)
    assert same.status_code == 200, same.text
    # (the same point: an event moves only by its relocate action)
    r = client.put(url, json={**_event(title="state left out", priority="high"), "geometry": before["geometry"]},
                   headers=worker)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "reported" and r.json()["properties"]["title"] == "state left out"
    assert client.get(url, headers=worker).json()["properties"]["status"] == "reported"


def test_a_new_event_starts_reported_and_may_not_start_in_another_state(client, worker, admin):
    made = client.post(ITEMS, json=_event(title="fresh"), headers=worker)
    assert made.status_code == 201, made.text
    assert made.json()["properties"]["status"] == "reported"
    explicit = client.post(ITEMS, json=_event(title="fresh, said reported", status="reported"), headers=worker)
    assert explicit.status_code == 201 and explicit.json()["properties"]["status"] == "reported"
    count = client.get(ITEMS, headers=admin).json()["numberMatched"]
    for prop, value in (("status", "closed"), ("assignee", "worker-A1"), ("deadline", "2024-06-02T00:00:00Z")):
        r = client.post(ITEMS, json=_event(title="born closed", **{prop: value}), headers=admin)
        assert r.status_code == 409, r.text
        assert r.json()["parameter"] == prop and r.json()["detail"].endswith("not by POST")
    assert client.get(ITEMS, headers=admin).json()["numberMatched"] == count


def test_an_idempotent_create_still_writes_once_and_starts_reported(client, worker, admin):
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    first = client.post(ITEMS, json=_event(title="once"), headers=headers)
    again = client.post(ITEMS, json=_event(title="once"), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and again.headers.get("idempotent-replayed") == "true"
    assert first.json()["properties"]["status"] == "reported"
    refused = client.post(ITEMS, json=_event(title="twice", status="closed"),
                          headers={**worker, "Idempotency-Key": str(uuid.uuid4())})
    assert refused.status_code == 409 and refused.json()["parameter"] == "status"


def test_a_worker_may_not_write_a_layer_that_does_not_name_workers(client, worker, admin):
    temples = client.get("/collections/temples/items", headers=worker).json()["features"]
    assert temples, "the worker reads the temples of his township"
    url = f"/collections/temples/items/{temples[0]['id']}"
    r = client.patch(url, json={"properties": {"name": "renamed"}}, headers=worker)
    assert r.status_code == 403 and r.json()["parameter"] == "collectionId"
    temple = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.2, 33.2]},
              "properties": {"name": "new temple"}}
    assert client.post("/collections/temples/items", json=temple, headers=worker).status_code == 403
    assert client.get(url, headers=worker).json()["properties"]["name"] == temples[0]["properties"]["name"]
    assert client.patch(url, json={"properties": {"name": "renamed"}}, headers=admin).status_code == 200
