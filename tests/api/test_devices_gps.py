"""Devices and the tracker-app protocols on both stores: registering phones, OsmAnd / Traccar Client (query
string and JSON), OwnTracks, Basic or URL-token sign-in, patrols started by a first fix, a day arriving partly
through /gps/osmand and partly as JSON batches, and every bad input answered 4xx naming what was wrong."""

from __future__ import annotations

import base64
import dataclasses
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
import morecantile
import pytest
from pyproj import Geod

from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from tests.api import county
from tests.api.conftest import login
from tests.api.test_patrols import _day_of_fixes

DAY = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def basic(username: str) -> dict[str, str]:
    """HTTP Basic headers with a county account's password."""
    raw = base64.b64encode(f"{username}:{county.PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the admin, worker-A1, worker-A2 (same township) and worker-B1."""
    h = hash_password(county.PASSWORD)
    client.app.state.store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A2",)),
                                      UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    return {name: login(client, name) for name in ("admin", "worker-A1", "worker-A2", "worker-B1")}


def _register(client, who, device_id, **extra):
    r = client.post("/devices", json={"device_id": device_id, "name": f"phone {device_id}", **extra}, headers=who)
    assert r.status_code == 201, r.text
    return r.json()


def _stop_open(client, who, worker):
    """Stop the worker's open patrols (each test starts from none)."""
    r = client.get("/collections/patrols/items", params={"filter": f"worker = '{worker}' AND status = 'active'",
                                                          "limit": 100}, headers=who)
    for f in r.json()["features"]:
        client.post(f"/patrols/{f['id']}/stop", headers=who)


def _osmand(fix: dict, device: str) -> dict:
    t = datetime.fromisoformat(fix["time"].replace("Z", "+00:00"))
    return {"id": device, "lat": fix["lat"], "lon": fix["lon"], "timestamp": int(t.timestamp()),
            "speed": 2.0, "bearing": 90, "altitude": 1200, "accuracy": 5, "batt": 77}


def test_a_worker_registers_his_phone_and_admins_manage_all(client, people):
    worker, other, admin = people["worker-A1"], people["worker-A2"], people["admin"]
    device = _register(client, worker, "imei-100")
    assert device["username"] == "worker-A1" and device["token"].startswith("dev_")
    assert client.get("/devices", headers=worker).json()["devices"] == [
        {k: v for k, v in device.items() if k != "token"}]
    assert client.get("/devices", headers=other).json()["devices"] == []
    assert "imei-100" in {d["device_id"] for d in client.get("/devices", headers=admin).json()["devices"]}
    again = client.post("/devices", json={"device_id": "imei-100"}, headers=other)
    assert again.status_code == 409 and again.json()["parameter"] == "device_id"
    for_someone = client.post("/devices", json={"device_id": "imei-101", "username": "worker-A2"}, headers=worker)
    assert for_someone.status_code == 403 and for_someone.json()["parameter"] == "username"
    by_admin = _register(client, admin, "imei-102", username="worker-A2")
    assert by_admin["username"] == "worker-A2"
    # Another worker's device: 403; no such device: 404; the owner (or an admin) deletes.
    assert client.delete(f"/devices/{device['id']}", headers=other).status_code == 403
    assert client.delete("/devices/999999", headers=worker).status_code == 404
    assert client.delete("/devices/x", headers=worker).status_code == 404
    assert client.delete(f"/devices/{by_admin['id']}", headers=admin).status_code == 204
    assert client.delete(f"/devices/{device['id']}", headers=worker).status_code == 204
    assert client.get("/devices", headers=worker).json()["devices"] == []
    assert client.get("/devices").status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({}, "device_id"), ({"device_id": ""}, "device_id"), ({"device_id": "x" * 101}, "device_id"),
    ({"device_id": ["a"]}, "device_id"), ({"device_id": "ok", "name": 5.5}, "name"), ([1], "body"),
    ({"device_id": "ok", "username": "nobody"}, "username"),
])
def test_a_bad_registration_is_400_naming_the_field(client, people, body, field):
    r = client.post("/devices", json=body, headers=people["admin"])
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_first_fix_by_token_starts_a_patrol_and_later_fixes_join_it(client, people):
    worker = people["worker-A1"]
    _stop_open(client, worker, "worker-A1")
    token = _register(client, worker, "osmand-1")["token"]
    fixes = _day_of_fixes(5)
    first = client.get(f"/gps/osmand/{token}", params={k: v for k, v in _osmand(fixes[0], "x").items() if k != "id"})
    assert first.status_code == 200, first.text
    pid = first.json()["patrol"]
    assert first.json()["status"] == "accepted"
    patrol = client.get(f"/collections/patrols/items/{pid}", headers=worker).json()["properties"]
    assert patrol["worker"] == "worker-A1" and patrol["grid_code"] == "A1" and patrol["status"] == "active"
    assert patrol["started_at"].startswith(fixes[0]["time"][:19])
    # POST with the query string, and a form body, go to the same patrol; the same fix again is a duplicate.
    r = client.post(f"/gps/osmand/{token}", params=_osmand(fixes[1], "osmand-1"))
    assert r.json() == {"patrol": pid, "status": "accepted"}
    r = client.post(f"/gps/osmand/{token}", data=_osmand(fixes[2], "osmand-1"))
    assert r.json() == {"patrol": pid, "status": "accepted"}
    assert client.get(f"/gps/osmand/{token}", params=_osmand(fixes[2], "osmand-1")).json()["status"] == "duplicate"
    stored = client.get("/collections/track_points/items", params={"filter": f"patrol_id = {pid}"},
                        headers=worker).json()["features"]
    assert len(stored) == 3
    one = min(stored, key=lambda f: f["properties"]["recorded_at"])["properties"]
    assert one["speed"] == pytest.approx(2.0 * 1852 / 3600) and one["battery"] == 77 and one["heading"] == 90


def test_basic_sign_in_traccar_json_and_owntracks(client, people):
    worker = people["worker-A2"]
    _stop_open(client, worker, "worker-A2")
    _register(client, worker, "traccar-2")
    _register(client, worker, "owntracks-2")
    pid = client.post("/patrols", json={"grid_code": "A2", "started_at": DAY.isoformat()}, headers=worker).json()["id"]
    t = DAY + timedelta(minutes=1)
    body = {"device_id": "traccar-2", "location": {
        "timestamp": t.isoformat().replace("+00:00", "Z"), "is_moving": True,
        "coords": {"latitude": 33.2, "longitude": 100.3, "speed": 1.5, "heading": -1, "altitude": 1300,
                   "accuracy": 4}, "battery": {"level": 0.55, "is_charging": False}}}
    r = client.post("/gps/osmand", json=body, headers=basic("worker-A2"))
    assert r.status_code == 200 and r.json() == {"patrol": pid, "status": "accepted"}, r.text
    own = {"_type": "location", "lat": 33.2001, "lon": 100.3001, "tst": int(t.timestamp()) + 10, "acc": 6,
           "batt": 54, "tid": "w2", "vel": 5, "cog": 180, "alt": 1301}
    r = client.post("/gps/owntracks", json=own, headers={**basic("worker-A2"), "X-Limit-U": "worker-A2",
                                                          "X-Limit-D": "owntracks-2"})
    assert r.status_code == 200 and r.json() == []
    # Not a location: acknowledged, nothing stored.
    assert client.post("/gps/owntracks", json={"_type": "lwt", "tst": 1}, headers=basic("worker-A2")).json() == []
    points = client.get("/collections/track_points/items", params={"filter": f"patrol_id = {pid}",
                                                                    "sortby": "recorded_at"}, headers=worker).json()
    props = [f["properties"] for f in points["features"]]
    assert len(props) == 2
    assert props[0]["battery"] == 55 and props[0]["heading"] is None and props[0]["speed"] == 1.5
    assert props[1]["speed"] == pytest.approx(5 / 3.6) and props[1]["heading"] == 180


def test_unknown_or_foreign_devices_and_bad_tokens_are_refused(client, people):
    _register(client, people["worker-B1"], "b1-phone")
    fix = _osmand(_day_of_fixes(1)[0], "b1-phone")
    foreign = client.get("/gps/osmand", params=fix, headers=basic("worker-A1"))
    assert foreign.status_code == 403 and foreign.json()["parameter"] == "id"
    unknown = client.get("/gps/osmand", params={**fix, "id": "never-registered"}, headers=basic("worker-A1"))
    assert unknown.status_code == 404 and unknown.json()["parameter"] == "id"
    missing = client.get("/gps/osmand", params={k: v for k, v in fix.items() if k != "id"}, headers=basic("worker-A1"))
    assert missing.status_code == 400 and missing.json()["parameter"] == "id"
    anonymous = client.get("/gps/osmand", params=fix)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    for token in ("dev_not-a-token", "nonsense"):
        bad = client.get(f"/gps/osmand/{token}", params=fix)
        assert bad.status_code == 401 and bad.json()["parameter"] == "token"
        assert client.post(f"/gps/owntracks/{token}", json={"_type": "location", "lat": 33.2, "lon": 100.3,
                                                             "tst": 1714636800}).status_code == 401
    wrong_password = client.get("/gps/osmand", params=fix, headers={
        "Authorization": "Basic " + base64.b64encode(b"worker-B1:wrong").decode()})
    assert wrong_password.status_code == 401
    own = {"_type": "location", "lat": 33.2, "lon": 100.7, "tst": 1714636800, "tid": "b1"}
    r = client.post("/gps/owntracks", json=own, headers={**basic("worker-A1"), "X-Limit-D": "b1-phone"})
    assert r.status_code == 403 and r.json()["parameter"] == "tid"


@pytest.mark.parametrize(("params", "field"), [
    ({"lat": None}, "lat"), ({"lon": None}, "lon"), ({"lat": "north", "lon": 100.1}, "lat"),
    ({"lat": 95, "lon": 100.1}, "lat"), ({"lat": 0, "lon": 0}, "lat"), ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": "-5"}, "timestamp"), ({"timestamp": 4102444800}, "timestamp"), ({"speed": "fast"}, "speed"),
    ({"batt": "nan"}, "batt"), ({"bearing": "inf"}, "bearing"),
])
def test_a_bad_osmand_fix_is_400_naming_the_field(client, people, params, field):
    token = client.post("/devices", json={"device_id": f"bad-{field}-{random.random()}"},
                        headers=people["worker-A1"]).json()["token"]
    query = {k: v for k, v in {"lat": 33.2, "lon": 100.1, "timestamp": 1714636800, **params}.items() if v is not None}
    r = client.get(f"/gps/osmand/{token}", params=query)
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(("body", "field"), [
    ({"device_id": "x"}, "location"), ({"device_id": "x", "location": {
        "coords": {"latitude": 33.2, "longitude": 100.1}}}, "location.timestamp"),
    ({"device_id": "x", "location": {"timestamp": "2024-05-02T08:00:00Z", "coords": {"latitude": 33.2}}},
     "location.coords.longitude"),
    ([], "body"),
])
def test_a_bad_traccar_message_is_400_naming_the_field(client, people, body, field):
    r = client.post("/gps/osmand", json=body, headers=basic("worker-A1"))
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"_type": "location", "lon": 100.1, "tst": 1714636800}, "lat"),
    ({"_type": "location", "lat": 33.2, "lon": 100.1}, "tst"),
    ({"_type": "location", "lat": 33.2, "lon": 100.1, "tst": "soon"}, "tst"),
    ({"_type": "location", "lat": 33.2, "lon": 100.1, "tst": 1714636800, "vel": "x"}, "vel"),
    ("location", "body"),
])
def test_a_bad_owntracks_message_is_400_naming_the_field(client, people, body, field):
    r = client.post("/gps/owntracks", json=body, headers={**basic("worker-A1"), "X-Limit-D": "irrelevant"})
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text


def test_a_day_partly_through_osmand_and_partly_in_json_batches_is_one_track(client, people):
    worker = people["worker-A1"]
    _stop_open(client, worker, "worker-A1")
    token = _register(client, worker, "mixed-1")["token"]
    pid = client.post("/patrols", json={"grid_code": "A1", "started_at": DAY.isoformat()},
                      headers=worker).json()["id"]
    fixes = [{k: v for k, v in f.items() if k != "id"} for f in _day_of_fixes(400)]  # the apps send no ids
    rng = random.Random(11)
    by_app = sorted(rng.sample(range(len(fixes)), 120))
    batches = [fixes[i:i + 90] for i in range(0, len(fixes), 70)]  # overlapping, and overlapping the app's
    rng.shuffle(batches)
    sent_by_app = 0
    for b, batch in enumerate(batches):
        r = client.post(f"/patrols/{pid}/points", json={"points": batch}, headers=worker)
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
        for i in by_app[b * 20:(b + 1) * 20]:  # the phone app sends some of the day in between
            r = client.get(f"/gps/osmand/{token}", params=_osmand(fixes[i], "mixed-1"))
            assert r.status_code == 200 and r.json()["patrol"] == pid, r.text
            sent_by_app += 1
    for i in by_app[len(batches) * 20:]:
        client.get(f"/gps/osmand/{token}", params=_osmand(fixes[i], "mixed-1"))
        sent_by_app += 1
    assert sent_by_app == len(by_app)
    props = client.get(f"/collections/patrols/items/{pid}", headers=worker).json()["properties"]
    expected = Geod(ellps="WGS84").line_length([f["lon"] for f in fixes], [f["lat"] for f in fixes])
    assert props["point_count"] == len(fixes)
    assert props["distance_m"] == pytest.approx(expected, abs=0.5)
    assert props["duration_s"] == (len(fixes) - 1) * 30
    actives = client.get("/collections/patrols/items", params={
        "filter": "worker = 'worker-A1' AND status = 'active'"}, headers=worker).json()["features"]
    assert [f["id"] for f in actives] == [pid]


def test_with_position_only_a_fix_starts_no_patrol(client, people):
    worker = people["worker-A2"]
    _stop_open(client, worker, "worker-A2")
    token = _register(client, worker, "position-2")["token"]
    settings = client.app.state.settings
    client.app.state.settings = dataclasses.replace(settings, gps_autostart="position")
    try:
        r = client.get(f"/gps/osmand/{token}", params=_osmand(_day_of_fixes(1)[0], "position-2"))
    finally:
        client.app.state.settings = settings
    assert r.status_code == 200 and r.json() == {"patrol": None, "status": "position"}
    actives = client.get("/collections/patrols/items", params={
        "filter": "worker = 'worker-A2' AND status = 'active'"}, headers=worker).json()["features"]
    assert actives == []
    seen = [d for d in client.get("/devices", headers=worker).json()["devices"] if d["device_id"] == "position-2"]
    assert seen[0]["last_seen_at"] is not None


def test_the_live_position_is_the_newest_fix_by_time_one_change_per_batch_and_scoped(client, people):
    worker = people["worker-A2"]
    store = client.app.state.store
    _stop_open(client, worker, "worker-A2")
    pid = client.post("/patrols", json={"grid_code": "A2", "started_at": DAY.isoformat()}, headers=worker).json()["id"]
    fixes = [{**f, "lon": f["lon"] + 0.25} for f in _day_of_fixes(200)]  # in grid A2
    before = store.change_bounds()[1]
    assert client.post(f"/patrols/{pid}/points", json={"points": fixes[100:]}, headers=worker).json()["accepted"] == 100
    moved = [c for c in store.changes_since(before) if c.layer_id == "positions"]
    assert len(moved) == 1 and moved[0].township_after == "A"

    def position():
        found = client.get("/collections/positions/items", params={"filter": "worker = 'worker-A2'"},
                           headers=people["admin"]).json()["features"]
        assert len(found) == 1
        return found[0]

    newest = position()
    assert newest["properties"]["recorded_at"].startswith(fixes[-1]["time"][:19])
    assert newest["geometry"]["coordinates"] == pytest.approx([fixes[-1]["lon"], fixes[-1]["lat"]])
    assert newest["properties"]["patrol_id"] == pid and newest["properties"]["grid_code"] == "A2"
    # An older batch arriving late does not move him back; it writes no position change.
    before = store.change_bounds()[1]
    client.post(f"/patrols/{pid}/points", json={"points": fixes[:100]}, headers=worker)
    assert [c for c in store.changes_since(before) if c.layer_id == "positions"] == []
    assert position()["properties"]["recorded_at"] == newest["properties"]["recorded_at"]
    # A leader of another township does not see it; the worker's own leader does.
    leader_b, leader_a = login(client, "leader-B"), login(client, "leader-A")
    assert client.get("/collections/positions/items", headers=leader_b).json()["numberMatched"] == 0
    assert client.get(f"/collections/positions/items/{newest['id']}", headers=leader_b).status_code == 404
    assert client.get(f"/collections/positions/items/{newest['id']}", headers=leader_a).status_code == 200
    # The layer is a map layer like the others: in the vector tiles.
    lon, lat = newest["geometry"]["coordinates"]
    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 15)
    r = client.get(f"/collections/positions/tiles/WebMercatorQuad/15/{t.y}/{t.x}", headers=leader_a)
    assert r.status_code == 200, r.text
    features = mapbox_vector_tile.decode(r.content)["positions"]["features"]
    assert [f["properties"]["worker"] for f in features] == ["worker-A2"]


def test_concurrent_first_fixes_of_one_worker_start_one_patrol(client, people):
    """Eight first fixes of one worker at the same moment, from his eight devices (each device's row would
    serialise its own fixes): one patrol is started, the others join it, every fix is stored once."""
    worker = people["worker-A2"]
    _stop_open(client, worker, "worker-A2")
    tokens = [_register(client, worker, f"race-{i}")["token"] for i in range(8)]
    fixes = _day_of_fixes(len(tokens))
    barrier = threading.Barrier(len(fixes))

    def send(token, fix):
        barrier.wait()
        return client.get(f"/gps/osmand/{token}", params={k: v for k, v in _osmand(fix, "x").items() if k != "id"})

    with ThreadPoolExecutor(len(fixes)) as pool:
        answers = list(pool.map(send, tokens, fixes))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"accepted"}
    pids = {a.json()["patrol"] for a in answers}
    assert len(pids) == 1
    active = client.get("/collections/patrols/items", params={
        "filter": "worker = 'worker-A2' AND status = 'active'"}, headers=worker).json()["features"]
    assert [f["id"] for f in active] == list(pids)
    stored = client.get("/collections/track_points/items", params={"filter": f"patrol_id = {pids.pop()}",
                                                                   "limit": 100}, headers=worker).json()
    assert len(stored["features"]) == len(fixes)
    assert active[0]["properties"]["point_count"] == len(fixes)
