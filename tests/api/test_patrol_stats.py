"""Patrol statistics over HTTP on both stores: a worker-day's mileage, duration, targets met, stops and grid
coverage against an independent computation; workers who did not patrol count; online now; scope (a worker
sees himself, a leader his townships); bad input."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import h3
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Point, box

from api.app import create_app
from api.settings import Settings
from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from tests.api import county
from tests.api.conftest import SECRET, login

DAY = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)  # 09:00 on 6 May in the county
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def client(county_db) -> Iterator[TestClient]:
    """The tiny county with daily targets of 5 km and 90 minutes, online within 10 minutes."""
    settings = Settings(database=county_db, secret=SECRET, public_url="http://testserver", patrol_target_km=5.0,
                        patrol_target_minutes=90.0, online_minutes=10.0)
    with TestClient(create_app(settings)) as c:
        yield c


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _walk(start: datetime, lon: float, lat: float) -> list[dict]:
    """300 fixes walking (12 m every 10 s), 60 fixes standing within 3 m (a ten-minute stop), 300 walking."""
    rng = random.Random(5)
    out, heading = [], 10.0
    for i in range(660):
        if 300 <= i < 360:
            x, y, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360), rng.uniform(0, 3))
        else:
            if i:
                heading += 0.3
                lon, lat, _ = GEOD.fwd(lon, lat, heading, 12.0)
            x, y = lon, lat
        out.append({"id": f"s{i}", "time": _iso(start + timedelta(seconds=10 * i)), "lon": round(x, 7),
                    "lat": round(y, 7)})
    return out


def _upload(client, who, grid, fixes, started, *, stop=False):
    r = client.post("/patrols", json={"grid_code": grid, "started_at": _iso(started)}, headers=who)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    batches = [fixes[i:i + 120] for i in range(0, len(fixes), 90)]
    random.Random(1).shuffle(batches)
    for batch in batches:
        r = client.post(f"/patrols/{pid}/points", json={"points": batch}, headers=who)
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
    if stop:  # ended at its last fix, so the worker may start his next patrol
        r = client.post(f"/patrols/{pid}/stop", json={"ended_at": max(f["time"] for f in fixes)}, headers=who)
        assert r.status_code == 200, r.text
    return pid


@pytest.fixture(scope="module")
def day(client):
    """worker-A1 patrols grid A1 on DAY (7 km, 110 minutes, one stop); worker-A2 does not patrol; worker-B1
    patrols B1 briefly on DAY and again right now (online)."""
    h = hash_password(county.PASSWORD)
    client.app.state.store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A2",)),
                                      UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    who = {n: login(client, n) for n in ("operator", "leader-A", "leader-B", "worker-A1", "worker-A2", "worker-B1",
                                         "dept-religion")}
    a1 = _walk(DAY, 100.1, 33.2)
    _upload(client, who["worker-A1"], "A1", a1, DAY)
    _upload(client, who["worker-B1"], "B1", _walk(DAY + timedelta(hours=3), 100.6, 33.2)[:120], DAY, stop=True)
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [{"id": f"n{i}", "time": _iso(now - timedelta(minutes=20) + timedelta(seconds=30 * i)),
               "lon": 100.6 + i * 1e-4, "lat": 33.3} for i in range(38)]
    _upload(client, who["worker-B1"], "B1", recent, now - timedelta(minutes=20))
    return who, a1


def _group(body, **match):
    [row] = [g for g in body["groups"] if all(g.get(k) == v for k, v in match.items())]
    return row


def test_a_worker_day_has_its_mileage_duration_targets_stops_and_coverage(client, day):
    who, fixes = day
    r = client.get("/stats/patrols", params={"day": "2024-05-06"}, headers=who["operator"])
    assert r.status_code == 200, r.text
    body = r.json()
    a1 = _group(body, worker="worker-A1")
    lon = np.array([f["lon"] for f in fixes])
    lat = np.array([f["lat"] for f in fixes])
    expected = float(np.abs(GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])[2]).sum())
    assert a1["distance_m"] == pytest.approx(expected, abs=0.1)
    assert a1["duration_s"] == 659 * 10
    assert (a1["patrolled"], a1["mileage_met"], a1["duration_met"], a1["met"]) == (1, 1, 1, 1)
    [stop] = a1["stop_list"]
    assert 590 <= stop["dwell_s"] <= 640 and a1["stops"] == 1 and a1["dwell_s"] == stop["dwell_s"]
    assert stop["start"] <= _iso(DAY + timedelta(seconds=3000)) <= stop["end"]
    grid = {h3.str_to_int(c) for c in h3.geo_to_cells(box(100.0, 33.0, 100.25, 33.5).__geo_interface__, 10)}
    visited = {h3.str_to_int(h3.latlng_to_cell(f["lat"], f["lon"], 10)) for f in fixes} & grid
    assert (a1["cells_visited"], a1["cells"]) == (len(visited), len(grid))
    assert a1["coverage"] == pytest.approx(len(visited) / len(grid), abs=1e-4)
    a2 = _group(body, worker="worker-A2")  # no patrol that day: counted, not patrolled
    assert (a2["patrolled"], a2["not_patrolled"], a2["distance_m"], a2["met"], a2["cells_visited"]) == (0, 1, 0, 0, 0)
    b1 = _group(body, worker="worker-B1")
    assert b1["patrolled"] == 1 and b1["met"] == 0 and b1["duration_s"] == 1190


def test_groups_by_township_and_grid_count_worker_days(client, day):
    who, _ = day
    body = client.get("/stats/patrols", params={"day": "2024-05-06", "group_by": "township_code"},
                      headers=who["operator"]).json()
    a = _group(body, township_code="A")
    assert (a["workers"], a["patrolled"], a["not_patrolled"], a["met"], a["patrol_rate"]) == (2, 1, 1, 1, 0.5)
    assert body["totals"]["workers"] == 3 and body["totals"]["patrolled"] == 2
    week = client.get("/stats/patrols", params={"day": "2024-05-05/2024-05-07", "group_by": "grid_code,day"},
                      headers=who["operator"]).json()
    assert len(week["groups"]) == 3 * 3 and week["totals"]["worker_days"] == 9 and week["totals"]["patrolled"] == 2


def test_online_now_is_a_recent_fix(client, day):
    who, _ = day
    body = client.get("/stats/patrols", headers=who["operator"]).json()  # today in the county
    assert _group(body, worker="worker-B1")["online_now"] == 1
    assert _group(body, worker="worker-A1")["online_now"] == 0
    assert body["totals"]["online_now"] == 1 and body["totals"]["online_now_rate"] == pytest.approx(1 / 3, abs=1e-4)


@pytest.mark.parametrize("who,workers", [
    ("worker-A1", {"worker-A1"}), ("worker-A2", {"worker-A2"}), ("leader-A", {"worker-A1", "worker-A2"}),
    ("leader-B", {"worker-B1"}), ("operator", {"worker-A1", "worker-A2", "worker-B1"}), ("dept-religion", set()),
    (None, set())])
def test_each_caller_counts_only_whom_he_may_see(client, day, who, workers):
    people, _ = day
    r = client.get("/stats/patrols", params={"day": "2024-05-06"}, headers=people[who] if who else {})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {g["worker"] for g in body["groups"]} == workers
    assert body["totals"]["workers"] == len(workers)
    if who == "worker-A2":  # his colleague's patrol is not his figure
        assert body["totals"]["distance_m"] == 0 and body["totals"]["patrols"] == 0


@pytest.mark.parametrize("params,parameter", [
    ({"day": "2024-13-01"}, "day"), ({"day": "yesterday"}, "day"), ({"day": "2024-05-07/2024-05-06"}, "day"),
    ({"day": "2024-01-01/2024-03-01"}, "day"), ({"day": "99999-01-01"}, "day"), ({"day": "2024-05-06/"}, "day"),
    ({"group_by": "type"}, "group_by"), ({"group_by": "day,day"}, "group_by"), ({"limit": "5"}, "limit"),
])
def test_bad_input_is_a_problem_naming_the_parameter(client, day, params, parameter):
    who, _ = day
    r = client.get("/stats/patrols", params=params, headers=who["operator"])
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == parameter


def test_fixes_of_a_patrol_no_longer_stored_still_count_for_their_worker(client, day):
    """Statistics name each patrol's worker once from the patrols; fixes left by a deleted patrol are named by
    their own worker column."""
    who, _ = day
    start = DAY + timedelta(days=2)
    client.app.state.store.bulk_load("track_points", [Feature(None, Point(100.3 + i * 1e-4, 33.3), {
        "patrol_id": 987654, "worker": "worker-A2", "recorded_at": start + timedelta(seconds=30 * i),
        "point_key": f"orphan{i}"}) for i in range(21)])
    body = client.get("/stats/patrols", params={"day": "2024-05-08"}, headers=who["operator"]).json()
    a2 = _group(body, worker="worker-A2")
    assert (a2["patrolled"], a2["patrols"], a2["duration_s"]) == (1, 1, 600)
    assert _group(body, worker="worker-A1")["patrolled"] == 0
