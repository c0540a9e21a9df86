"""GET /stream over a real HTTP connection, on both stores: scoped per subscriber, narrowed by ?layers=,
replayed exactly after a reconnect with Last-Event-ID, reset when the log no longer holds what was missed."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.e2e
SECRET = "stream-test-secret-of-at-least-32-bytes"
GJ = {"Content-Type": "application/geo+json"}


@pytest.fixture(scope="module", params=STORE_KINDS)
def server(request, catalog, tmp_path_factory, fresh_postgis_url):
    db = filled_database(request.param, catalog, tmp_path_factory.mktemp(f"stream-{request.param}"),
                         fresh_postgis_url, county.fill)
    app = create_app(Settings(database=db, secret=SECRET, stream_heartbeat_seconds=0.3, jobs=False))
    with live_server(app) as base:
        yield base, app


def _login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _report(base: str, headers: dict, lon: float, lat: float = 33.2) -> int:
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"title": f"stream {uuid.uuid4().hex[:6]}", "type": "garbage",
                           "reported_at": "2024-06-01T08:00:00Z"}}
    r = httpx.post(f"{base}/collections/events/items", json=body, headers={**headers, **GJ})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def open_streams():
    streams = []

    def open_(url, headers=None):
        s = SSEClient(url, headers)
        streams.append(s)
        assert s.status == 200
        s.next(kind="ready")
        return s

    yield open_
    for s in streams:
        s.close()


def test_a_leader_hears_only_his_township_and_a_feature_leaving_it_arrives_as_a_delete(server, open_streams):
    base, _ = server
    op = _login(base, "operator")
    leader = open_streams(f"{base}/stream?layers=events", _login(base, "leader-A"))
    everyone = open_streams(f"{base}/stream?layers=events", op)
    in_b = _report(base, op, 100.75)
    in_a = _report(base, op, 100.25)
    seen = everyone.next()
    assert (seen.data["id"], seen.data["op"], seen.data["township_code"]) == (in_b, "insert", "B")
    assert everyone.next().data["id"] == in_a
    mine = leader.next()
    assert (mine.data["id"], mine.data["op"], mine.data["layer"]) == (in_a, "insert", "events")
    assert mine.data["properties"]["type"] == "garbage" and mine.data["properties"]["township_code"] == "A"
    assert mine.seq == seen.seq + 1  # the event id is the change-log seq
    # The operator moves the event to township B (the relocate action: a bare PATCH may not move an event):
    # for the leader of A it is gone.
    r = httpx.post(f"{base}/events/{in_a}/actions/relocate", headers=op, json={"lon": 100.8, "lat": 33.2})
    assert r.status_code == 200, r.text
    gone = leader.next()
    assert (gone.data["id"], gone.data["op"]) == (in_a, "delete") and "properties" not in gone.data
    moved = everyone.next()
    assert (moved.data["op"], moved.data["township_code"]) == ("update", "B")
    assert leader.drain(0.3) == []  # nothing of township B, ever


def test_layers_narrows_the_stream_and_an_unreadable_layer_is_refused(server, open_streams):
    base, _ = server
    admin = _login(base, "admin")
    temples = open_streams(f"{base}/stream?layers=temples", admin)
    _report(base, admin, 100.25)
    temple = httpx.get(f"{base}/collections/temples/items", headers=admin).json()["features"][0]
    r = httpx.patch(f"{base}/collections/temples/items/{temple['id']}", headers={**admin, **GJ},
                    json={"type": "Feature", "geometry": None, "properties": {"monks": 12}})
    assert r.status_code == 200, r.text
    got = temples.next()
    assert (got.data["layer"], got.data["id"], got.data["op"]) == ("temples", temple["id"], "update")
    assert temples.drain(0.3) == []
    anon = httpx.get(f"{base}/stream", params={"layers": "events"})
    assert anon.status_code == 400 and anon.json()["parameter"] == "layers"


def test_a_reconnect_with_last_event_id_replays_exactly_what_was_missed(server, open_streams):
    base, _ = server
    op = _login(base, "operator")
    first = open_streams(f"{base}/stream?layers=events", op)
    e1 = _report(base, op, 100.2)
    last = first.next()
    assert last.data["id"] == e1
    first.close()
    missed = [_report(base, op, 100.3), _report(base, op, 100.7)]
    again = SSEClient(f"{base}/stream?layers=events", {**op, "Last-Event-ID": last.id})
    try:
        replayed = [again.next(), again.next()]
        assert [e.data["id"] for e in replayed] == missed
        assert again.next(kind="ready").seq == replayed[-1].seq
        e4 = _report(base, op, 100.4)
        live = again.next()
        assert live.data["id"] == e4 and live.seq > replayed[-1].seq
        assert [e for e in again.drain(0.3) if e.event == "change"] == []  # nothing twice
    finally:
        again.close()


def test_a_last_event_id_the_log_no_longer_holds_gets_a_reset(server):
    base, app = server
    op = _login(base, "operator")
    _report(base, op, 100.2)
    old = app.state.store.change_bounds()[1]
    _report(base, op, 100.2)
    _report(base, op, 100.2)
    app.state.store.purge_changes(datetime.now(UTC) + timedelta(minutes=1))
    s = SSEClient(f"{base}/stream", {**op, "Last-Event-ID": str(old - 1)})
    try:
        reset = s.next(kind=None)
        assert reset.event == "reset" and reset.seq == app.state.store.change_bounds()[1]
    finally:
        s.close()


def test_a_browser_opens_the_stream_with_a_short_ticket_not_its_token(server, open_streams):
    base, _ = server
    leader = _login(base, "leader-A")
    r = httpx.post(f"{base}/stream/tickets", headers=leader)
    assert r.status_code == 200 and 0 < r.json()["expires_in"] <= 60
    ticket = r.json()["ticket"]
    stream = open_streams(f"{base}/stream?layers=events&ticket={ticket}")
    op = _login(base, "operator")
    _report(base, op, 100.75)
    in_a = _report(base, op, 100.25)
    assert stream.next().data["id"] == in_a  # the ticket carries the leader's scope
    assert httpx.get(f"{base}/collections/events/items", headers={"Authorization": f"Bearer {ticket}"}
                     ).status_code == 401
    assert httpx.post(f"{base}/stream/tickets").status_code == 401
    token = leader["Authorization"].split()[1]
    assert httpx.get(f"{base}/stream", params={"ticket": token}).status_code == 401


@pytest.mark.parametrize("value", ["abc", "-1", "99999999999999999999999"])
def test_a_bad_last_event_id_is_a_400_naming_it(server, value):
    base, _ = server
    r = httpx.get(f"{base}/stream", headers={"Last-Event-ID": value})
    assert r.status_code == 400 and r.json()["parameter"] == "Last-Event-ID"


def test_an_idle_stream_gets_heartbeat_comments(server, open_streams):
    base, _ = server
    s = open_streams(f"{base}/stream", _login(base, "operator"))
    time.sleep(1.0)
    assert s.comments >= 2
