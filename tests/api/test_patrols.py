"""Patrols over HTTP on both stores: start, upload a day of fixes in shuffled overlapping batches (one track,
the right mileage and duration), duplicates and bad points reported, whose patrol, stopped patrols, malformed
batches, gzip bodies, and the job closing silent patrols."""

from __future__ import annotations

import gzip
import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Geod

from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from layers import patrol_work
from tests.api import county
from tests.api.conftest import login

DAY = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the admin, worker-A1, a second worker in A and one in B."""
    h = hash_password(county.PASSWORD)
    client.app.state.store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A2",)),
                                      UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    return {name: login(client, name) for name in ("admin", "worker-A1", "worker-A2", "worker-B1")}


def _start(client, who, grid="A1", **body):
    """A new patrol of the worker; his patrol an earlier test left open is stopped first."""
    r = client.post("/patrols", json={"grid_code": grid, **body}, headers=who)
    if r.status_code == 409:
        assert client.post(f"/patrols/{r.json()['open_patrol']}/stop", headers=who).status_code == 200
        r = client.post("/patrols", json={"grid_code": grid, **body}, headers=who)
    assert r.status_code == 201, r.text
    return r.json()


def _day_of_fixes(n: int = 960, step_s: int = 30) -> list[dict]:
    """A worker walking a wandering path in grid A1 (lon 100.0-100.25, lat 33.0-33.5), one fix every 30 s."""
    rng = random.Random(7)
    lon, lat, heading = 100.1, 33.2, 0.0
    out = []
    for i in range(n):
        heading += rng.uniform(-0.5, 0.5)
        metres = rng.uniform(20, 45)  # 0.7-1.5 m/s
        lon += metres * math.sin(heading) / (111_320 * math.cos(math.radians(lat)))
        lat += metres * math.cos(heading) / 110_540
        lon, lat = min(max(lon, 100.01), 100.24), min(max(lat, 33.01), 33.49)
        t = DAY + timedelta(seconds=i * step_s)
        out.append({"id": f"p{i}", "time": t.isoformat().replace("+00:00", "Z"), "lon": round(lon, 7),
                    "lat": round(lat, 7), "accuracy": 5.0, "speed": 1.1, "heading": 90.0, "altitude": 1200.0,
                    "battery": 80.0})
    return out


def test_a_day_uploaded_in_shuffled_overlapping_batches_is_one_track_with_the_right_figures(client, people):
    worker = people["worker-A1"]
    patrol = _start(client, worker, started_at=DAY.isoformat(), mode="walking")
    pid = patrol["id"]
    assert patrol["properties"]["status"] == "active" and patrol["properties"]["worker"] == "worker-A1"
    fixes = _day_of_fixes()
    # Overlapping windows of 200 fixes every 150: 50 fixes of each batch come again in the next one.
    batches = [fixes[i:i + 200] for i in range(0, len(fixes), 150)]
    random.Random(3).shuffle(batches)
    accepted = duplicate = 0
    for batch in batches:
        r = client.post(f"/patrols/{pid}/points", json={"points": batch}, headers=worker)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["rejected"] == 0
        accepted += body["accepted"]
        duplicate += body["duplicate"]
    assert accepted == len(fixes)
    assert duplicate == sum(len(b) for b in batches) - len(fixes)
    # The whole batch again: every point a duplicate, nothing changes.
    again = client.post(f"/patrols/{pid}/points", json={"points": batches[0]}, headers=worker).json()
    assert again["duplicate"] == len(batches[0]) and again["accepted"] == 0
    assert {p["status"] for p in again["points"]} == {"duplicate"}

    expected = Geod(ellps="WGS84").line_length([f["lon"] for f in fixes], [f["lat"] for f in fixes])
    got = client.get(f"/collections/patrols/items/{pid}", headers=worker).json()
    props = got["properties"]
    assert props["point_count"] == len(fixes)
    assert props["distance_m"] == pytest.approx(expected, abs=0.5)
    assert props["duration_s"] == (len(fixes) - 1) * 30
    assert len(got["geometry"]["coordinates"]) == len(fixes)
    assert got["geometry"]["coordinates"][0] == pytest.approx([fixes[0]["lon"], fixes[0]["lat"]])
    assert got["geometry"]["coordinates"][-1] == pytest.approx([fixes[-1]["lon"], fixes[-1]["lat"]])
    stored = client.get("/collections/track_points/items", params={"filter": f"patrol_id = {pid}", "limit": 2000},
                        headers=worker).json()
    assert stored["numberMatched"] == len(fixes)

    r = client.post(f"/patrols/{pid}/stop", json={"ended_at": (DAY + timedelta(hours=8, minutes=5)).isoformat()},
                    headers=worker)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "finished"
    assert r.json()["properties"]["close_reason"] == "stopped"
    # Stopped: no more fixes, no second stop.
    late = client.post(f"/patrols/{pid}/points", json={"points": fixes[:1]}, headers=worker)
    assert late.status_code == 409 and late.json()["parameter"] == "patrolId"
    assert client.post(f"/patrols/{pid}/stop", headers=worker).status_code == 409


def test_bad_points_are_rejected_one_by_one_with_their_reason(client, people):
    worker = people["worker-A1"]
    pid = _start(client, worker)["id"]
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def fix(i, lon=100.1, lat=33.2, **extra):
        return {"id": f"q{i}", "time": (t + timedelta(seconds=10 * i)).isoformat(), "lon": lon, "lat": lat,
                **extra}
    points = [
        fix(0), fix(1, lon=100.1001),
        fix(2, lon=100.1002, lat=95.0),                       # bad coordinates
        fix(3, lon=0, lat=0),                                 # 0,0
        {**fix(4), "time": (datetime.now(UTC) + timedelta(days=1)).isoformat()},  # future
        fix(5, lon=100.4, lat=33.4),                          # 30 km in 10 s, and back: an impossible jump
        fix(6, lon=100.1003),
        fix(7, lon="east"),                                   # not a number
        {"id": "q8", "lon": 100.1, "lat": 33.2},              # no time
        fix(9, lon=100.1004, speed="fast"),
        fix(1, lon=100.1001),                                 # the same id twice in one batch
    ]
    body = client.post(f"/patrols/{pid}/points", json={"points": points}, headers=worker).json()
    statuses = [(p["status"], p.get("reason", "")) for p in body["points"]]
    assert [s for s, _ in statuses] == ["accepted", "accepted", "rejected", "rejected", "rejected", "rejected",
                                        "accepted", "rejected", "rejected", "rejected", "duplicate"]
    assert "coordinates" in statuses[2][1]
    assert "0,0" in statuses[3][1]
    assert "future" in statuses[4][1]
    assert "impossible jump" in statuses[5][1]
    assert "coordinates" in statuses[7][1]
    assert "time" in statuses[8][1]
    assert "speed" in statuses[9][1]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (3, 1, 7)
    assert body["statistics"]["point_count"] == 3


def test_numbers_past_a_floats_range_reject_their_fix_only(client, people):
    worker = people["worker-A1"]
    pid = _start(client, worker)["id"]
    good, *_ = _day_of_fixes(1)
    points = [{**good, "id": "huge-battery", "battery": 10**400}, {**good, "id": "huge-lon", "lon": -(10**400)},
              {**good, "id": "int-lon", "lon": 100, "battery": 10**15}, good]
    r = client.post(f"/patrols/{pid}/points", json={"points": points}, headers=worker)
    assert r.status_code == 200, r.text
    got = [(p["status"], p.get("reason", "")) for p in r.json()["points"]]
    assert got[0][0] == "rejected" and "battery" in got[0][1]
    assert got[1][0] == "rejected" and "coordinates" in got[1][1]
    assert [s for s, _ in got[2:]] == ["accepted", "accepted"]


def test_a_spike_stored_before_its_neighbours_arrived_does_not_count(client, people):
    worker = people["worker-A1"]
    fixes = _day_of_fixes(40)
    spike = {**fixes[20], "id": "spike", "lon": fixes[20]["lon"] + 0.3,
             "time": (DAY + timedelta(seconds=20 * 30 + 15)).isoformat()}
    totals = []
    for order in ([[spike], fixes], [fixes + [spike]]):
        pid = _start(client, worker)["id"]
        for batch in order:
            client.post(f"/patrols/{pid}/points", json={"points": batch}, headers=worker)
        totals.append(client.get(f"/collections/patrols/items/{pid}", headers=worker).json()["properties"])
    expected = Geod(ellps="WGS84").line_length([f["lon"] for f in fixes], [f["lat"] for f in fixes])
    assert totals[0]["distance_m"] == totals[1]["distance_m"] == pytest.approx(expected, abs=0.5)
    assert totals[0]["duration_s"] == totals[1]["duration_s"] == 39 * 30


def test_batches_in_order_give_exactly_the_figures_and_line_of_batches_in_any_order(client, people, monkeypatch):
    """A phone sending as it goes (every batch after the last: the track is extended from its stored tail)
    and the same fixes again with overlaps, or late and shuffled (recomputed from every stored fix), give the
    same line and figures to the millimetre."""
    worker = people["worker-A1"]
    fixes = _day_of_fixes(300, step_s=10)
    for i in (40, 99, 151):  # impossible jumps: mid-batch (refused), the last of a batch (kept, then left out)
        fixes[i] = {**fixes[i], "lon": fixes[i]["lon"] + 0.2}
    fixes[200] = {**fixes[200], "id": None}  # no phone id: the fix time is its key
    fixes[201] = {**fixes[201], "time": fixes[202]["time"], "id": "same-time"}  # two fixes at one time
    fixes.insert(120, {**fixes[119], "id": "p119-again"})  # the same time and place under another id
    cuts = [0, 45, 100, 152, 153, 202, 250, len(fixes)]
    in_order = [fixes[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    overlapping = [in_order[0]] + [[in_order[k - 1][-1], *b] for k, b in enumerate(in_order) if k]  # a retry each
    shuffled = [fixes[i:i + 70] for i in range(0, len(fixes), 45)]
    random.Random(5).shuffle(shuffled)
    recomputed = []
    monkeypatch.setattr(patrol_work, "_recompute", lambda *a, _r=patrol_work._recompute: recomputed.append(1) or _r(*a))
    results = []
    for batches in (in_order, overlapping, shuffled):
        recomputed.clear()
        pid = _start(client, worker)["id"]
        reports = [client.post(f"/patrols/{pid}/points", json={"points": b}, headers=worker).json() for b in batches]
        results.append((client.get(f"/collections/patrols/items/{pid}", headers=worker).json(), reports))
        if batches is in_order:
            assert not recomputed  # every batch extended the track
        elif batches is overlapping:
            assert len(recomputed) == len(batches) - 1
    figures = [got["properties"] for got, _ in results]
    assert results[0][0]["geometry"] == results[1][0]["geometry"] == results[2][0]["geometry"]
    for k in ("distance_m", "duration_s"):
        assert figures[0][k] == figures[1][k] == figures[2][k], k
    # In order and with overlaps the same fixes are refused and stored.
    assert figures[0]["point_count"] == figures[1]["point_count"]
    refused = [[(p.get("id"), p["status"]) for r in reports for p in r["points"] if p["status"] == "rejected"]
               for _, reports in results[:2]]
    assert refused[0] == refused[1] == [("p40", "rejected")]
    assert figures[0]["point_count"] == len(fixes) - 1
    kept = [f for f in fixes if f["id"] not in ("p40", "p99", "p151")]
    assert results[0][0]["geometry"]["coordinates"][-1] == pytest.approx([kept[-1]["lon"], kept[-1]["lat"]])
    assert len(results[0][0]["geometry"]["coordinates"]) == len(kept)
    expected = Geod(ellps="WGS84").line_length(*zip(*results[0][0]["geometry"]["coordinates"], strict=True))
    assert figures[0]["distance_m"] == pytest.approx(expected, abs=0.05)
    assert figures[0]["duration_s"] == 299 * 10


def test_only_the_worker_or_an_admin_may_touch_a_patrol(client, people):
    pid = _start(client, people["worker-A1"])["id"]
    one = {"points": _day_of_fixes(1)}
    other = client.post(f"/patrols/{pid}/points", json=one, headers=people["worker-A2"])
    assert other.status_code == 403 and other.json()["parameter"] == "patrolId"
    assert client.post(f"/patrols/{pid}/stop", headers=people["worker-A2"]).status_code == 403
    assert client.post(f"/patrols/{pid}/points", json=one, headers=people["worker-B1"]).status_code == 404
    assert client.post("/patrols/999999/points", json=one, headers=people["worker-A1"]).status_code == 404
    assert client.post(f"/patrols/{pid}/points", json=one).status_code == 401
    r = client.post(f"/patrols/{pid}/stop", headers=people["admin"])
    assert r.status_code == 200 and r.json()["properties"]["close_reason"] == "stopped by admin"
    # A grid outside the worker's townships cannot be patrolled by him.
    r = client.post("/patrols", json={"grid_code": "B1"}, headers=people["worker-A1"])
    assert r.status_code == 400 and r.json()["parameter"] == "grid_code"


def test_a_second_start_beside_an_open_patrol_is_409_naming_the_open_one(client, people):
    worker = people["worker-A2"]
    first = _start(client, worker, grid="A2", started_at=DAY.isoformat())
    mine = {"filter": "worker = 'worker-A2' AND status = 'active'", "limit": 100}
    # The same grid, another start time (a phone that lost the first answer and starts again): refused, and
    # the answer names the open patrol, which goes on.
    for body in ({"grid_code": "A2"}, {"grid_code": "A2", "started_at": (DAY + timedelta(hours=1)).isoformat()}):
        r = client.post("/patrols", json=body, headers=worker)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["open_patrol"] == first["id"] and f"patrol {first['id']} open" in problem["detail"]
    assert [f["id"] for f in client.get("/collections/patrols/items", params=mine, headers=worker).json()[
        "features"]] == [first["id"]]
    fix = _day_of_fixes(1)[0]
    r = client.post(f"/patrols/{first['id']}/points", json={"points": [{**fix, "lon": 100.3, "lat": 33.2}]},
                    headers=worker)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    # Bad input is still named as such while a patrol is open.
    for body, field in (({"grid_code": "A2", "mode": "flying"}, "mode"), ({"grid_code": "nowhere"}, "grid_code"),
                        ({"grid_code": "A2", "started_at": "soon"}, "started_at"), ([], "body")):
        r = client.post("/patrols", json=body, headers=worker)
        assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    # Another worker's open patrol is no obstacle; once the open one is stopped, a new one starts.
    other = _start(client, people["worker-B1"], grid="B1")
    assert client.post(f"/patrols/{other['id']}/stop", headers=people["worker-B1"]).status_code == 200
    assert client.post(f"/patrols/{first['id']}/stop", headers=worker).status_code == 200
    second = client.post("/patrols", json={"grid_code": "A2"}, headers=worker)
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first["id"]
    client.post(f"/patrols/{second.json()['id']}/stop", headers=worker)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "points"), ({"points": "many"}, "points"), ([1, 2], "body"),
    ({"points": [{}] * (patrol_work.MAX_POINTS + 1)}, "points"),
])
def test_a_malformed_batch_is_400_naming_the_field(client, people, body, field):
    pid = _start(client, people["worker-A1"])["id"]
    r = client.post(f"/patrols/{pid}/points", json=body, headers=people["worker-A1"])
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_malformed_start_and_bodies(client, people):
    worker = people["worker-A1"]
    for body, field in (({}, "grid_code"), ({"grid_code": "A1", "started_at": "yesterday"}, "started_at"),
                        ({"grid_code": "A1", "mode": "flying"}, "mode"), ({"grid_code": "A1", "task_id": "x"},
                                                                          "task_id")):
        r = client.post("/patrols", json=body, headers=worker)
        assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    pid = _start(client, worker)["id"]
    r = client.post(f"/patrols/{pid}/points", content=b"{not json", headers={**worker,
                                                                          "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["parameter"] == "body"
    r = client.post(f"/patrols/{pid}/points", content=b"not gzip", headers={
        **worker, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["parameter"] == "Content-Encoding"
    bomb = gzip.compress(b" " * (9 * 1024 * 1024))
    r = client.post(f"/patrols/{pid}/points", content=bomb, headers={
        **worker, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 413 and r.json()["parameter"] == "body"


def test_a_gzip_body_is_accepted(client, people):
    worker = people["worker-A1"]
    pid = _start(client, worker)["id"]
    fixes = _day_of_fixes(500)
    r = client.post(f"/patrols/{pid}/points", content=gzip.compress(json.dumps({"points": fixes}).encode()),
                    headers={**worker, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 500


def test_a_silent_patrol_is_closed_by_the_job_and_still_takes_late_fixes(client, people):
    worker = people["worker-A1"]
    store = client.app.state.store
    pid = _start(client, worker, started_at=DAY.isoformat())["id"]
    fixes = _day_of_fixes(10)
    client.post(f"/patrols/{pid}/points", json={"points": fixes[:5]}, headers=worker)
    patrol_work.close_silent(store, timedelta(minutes=30), at=datetime.now(UTC) + timedelta(minutes=20))
    assert client.get(f"/collections/patrols/items/{pid}", headers=worker).json()["properties"]["status"] == "active"
    summary = patrol_work.close_silent(store, timedelta(minutes=30), at=datetime.now(UTC) + timedelta(minutes=31))
    assert summary and "closed" in summary
    props = client.get(f"/collections/patrols/items/{pid}", headers=worker).json()["properties"]
    assert props["status"] == "finished"
    assert props["close_reason"] == "auto-closed after 30 min without fixes"
    assert props["ended_at"].startswith(fixes[4]["time"][:19])
    # The phone comes back online: its late fixes still belong to the patrol.
    late = client.post(f"/patrols/{pid}/points", json={"points": fixes[5:]}, headers=worker).json()
    assert late["accepted"] == 5 and late["statistics"]["point_count"] == 10


def test_a_batch_is_one_summary_change_for_its_points_and_one_for_the_patrol(client, people):
    worker = people["worker-A1"]
    store = client.app.state.store
    pid = _start(client, worker)["id"]
    before = store.change_bounds()[1]
    fixes = _day_of_fixes(300)
    r = client.post(f"/patrols/{pid}/points", json={"points": fixes}, headers=worker)
    assert r.json()["accepted"] == 300
    changes = store.changes_since(before)
    points = [c for c in changes if c.layer_id == "track_points"]
    assert len(points) == 1 and points[0].fid is None and points[0].op == "insert"
    assert points[0].properties["count"] == 300 and points[0].properties["patrol_id"] == pid
    assert points[0].township_after == "A"
    lons, lats = [f["lon"] for f in fixes], [f["lat"] for f in fixes]
    assert points[0].after == pytest.approx((min(lons), min(lats), max(lons), max(lats)))
    assert [(c.layer_id, c.fid) for c in changes if c.layer_id == "patrols"] == [("patrols", pid)]
    # A batch of duplicates writes no point and no point change, only the patrol's last activity.
    before = store.change_bounds()[1]
    client.post(f"/patrols/{pid}/points", json={"points": fixes[:10]}, headers=worker)
    assert [c.layer_id for c in store.changes_since(before)] == ["patrols"]
