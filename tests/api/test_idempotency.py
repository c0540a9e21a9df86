"""Idempotency-Key on POST /collections/events/items: a retry gets the first event, never a second one."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import SECRET, login

GJ = {"Content-Type": "application/geo+json"}
ITEMS = "/collections/events/items"


def _event(title: str, lon: float = 100.1, lat: float = 33.2) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"title": title, "type": "road_damage", "reported_at": "2024-06-01T08:00:00Z"}}


@pytest.fixture(scope="module")
def worker(client):
    return {**login(client, "worker-A1"), **GJ}


def _titled(client: TestClient, title: str) -> int:
    """How many events carry this title (as the admin sees them)."""
    body = client.get(ITEMS, params={"filter": f"title = '{title}'"}, headers=login(client, "admin")).json()
    return body["numberMatched"]


def test_a_retry_with_the_same_key_gets_the_same_event_and_writes_nothing(client, worker):
    title = f"retried {uuid.uuid4().hex[:8]}"
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    first = client.post(ITEMS, json=_event(title), headers=headers)
    again = client.post(ITEMS, json=_event(title), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in first.headers
    assert _titled(client, title) == 1


def test_the_same_key_with_another_body_is_422_and_writes_nothing(client, worker):
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    assert client.post(ITEMS, json=_event("original report"), headers=headers).status_code == 201
    r = client.post(ITEMS, json=_event("a different report"), headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == "Idempotency-Key"
    assert _titled(client, "a different report") == 0


def test_keys_belong_to_their_principal(client, worker):
    key = str(uuid.uuid4())
    title = f"two reporters {key[:8]}"
    mine = client.post(ITEMS, json=_event(title), headers={**worker, "Idempotency-Key": key})
    theirs = client.post(ITEMS, json=_event(title), headers={**login(client, "leader-A"), **GJ,
                                                             "Idempotency-Key": key})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert _titled(client, title) == 2


def test_without_a_key_every_post_creates(client, worker):
    title = f"no key {uuid.uuid4().hex[:8]}"
    for _ in range(2):
        assert client.post(ITEMS, json=_event(title), headers=worker).status_code == 201
    assert _titled(client, title) == 2


def test_a_bad_key_or_a_bad_body_is_400_and_a_fixed_retry_still_works(client, worker):
    assert client.post(ITEMS, json=_event("x"), headers={**worker, "Idempotency-Key": ""}).json()["parameter"] \
        == "Idempotency-Key"
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    bad = _event("bad then fixed")
    bad["geometry"] = {"type": "Point", "coordinates": ["east", 33.2]}
    assert client.post(ITEMS, json=bad, headers=headers).status_code == 400
    assert client.post(ITEMS, json=_event("bad then fixed"), headers=headers).status_code == 201


def test_two_concurrent_requests_on_two_server_processes_create_one_event(client, county_db, worker):
    """Two apps over one database stand for two processes behind a load balancer."""
    title = f"concurrent {uuid.uuid4().hex[:8]}"
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    settings = Settings(database=county_db, secret=SECRET, public_url="http://testserver")
    with TestClient(create_app(settings)) as other, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda c: c.post(ITEMS, json=_event(title), headers=headers),
                                [client, other, client, other]))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.headers["location"] for a in answers}) == 1
    assert _titled(client, title) == 1


def test_a_response_lost_after_the_commit_is_given_to_the_retry_and_there_is_one_event(client, worker, monkeypatch):
    # The write, its change-log row and the kept response committed; then the answer never reached the
    # phone (the connection dropped, the process died). The retry must get that first event.
    import api.features as features

    title = f"lost answer {uuid.uuid4().hex[:8]}"
    real, lost = features._json, []

    def lose_the_first_201(body, status=200, *args, **kwargs):
        if status == 201 and not lost:
            lost.append(body["id"])
            raise ConnectionResetError("the phone went out of coverage")
        return real(body, status, *args, **kwargs)

    monkeypatch.setattr(features, "_json", lose_the_first_201)
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    with pytest.raises(ConnectionResetError):
        client.post(ITEMS, json=_event(title), headers=headers)
    retry = client.post(ITEMS, json=_event(title), headers=headers)
    assert retry.status_code == 201 and retry.headers.get("idempotent-replayed") == "true"
    assert retry.json()["id"] == lost[0]
    assert _titled(client, title) == 1


def test_a_request_that_fails_before_its_commit_writes_nothing_and_the_retry_writes_once(client, worker,
                                                                                     monkeypatch):
    store = client.app.state.store
    real, failed = store.finish_idempotency_key, []

    def fail_once(*args, **kwargs):
        if not failed:
            failed.append(True)
            raise RuntimeError("the database went away mid-transaction")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "finish_idempotency_key", fail_once)
    title = f"half written {uuid.uuid4().hex[:8]}"
    headers = {**worker, "Idempotency-Key": str(uuid.uuid4())}
    with pytest.raises(RuntimeError):
        client.post(ITEMS, json=_event(title), headers=headers)
    assert _titled(client, title) == 0  # the event was rolled back with the key
    retry = client.post(ITEMS, json=_event(title), headers=headers)
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers
    assert _titled(client, title) == 1
