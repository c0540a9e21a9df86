"""Patrol replay over OGC API - Moving Features on both stores: a day uploaded in shuffled overlapping batches
replays as every unique accepted fix in time order, valid against the standard's schemas and read back by
movingpandas; windows, sub-trajectories, leaf instants, the derived curves, who may replay whose patrol, and
bad input on every route."""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pyproj import Geod

from api.routers.moving_features import parse_leaf
from geoserver.errors import BadInput
from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from tests.api import county
from tests.api.conftest import login
from tests.api.mf_schema import response_schema, validate

DAY = datetime(2024, 5, 3, 1, 0, tzinfo=UTC)  # 09:00 in the county
STEP_S, STEP_M, FIXES = 10, 12.0, 720  # two hours at 1.2 m/s, one fix every 10 s
GEOD = Geod(ellps="WGS84")
ITEMS = "/collections/patrols/items"
TGS = "/collections/{collectionId}/items/{mFeatureId}/tgsequence"


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fixes() -> list[dict]:
    """A worker walking in grid A1 at exactly 1.2 m/s (geodesic), turning slowly, one fix every 10 s."""
    lon, lat, heading = 100.1, 33.2, 30.0
    out = []
    for i in range(FIXES):
        out.append({"id": f"f{i}", "time": _iso(DAY + timedelta(seconds=i * STEP_S)), "lon": lon, "lat": lat,
                    "accuracy": 5.0, "speed": 1.2})
        heading += 0.5
        lon, lat, _ = GEOD.fwd(lon, lat, heading, STEP_M)
    return out


@pytest.fixture(scope="module")
def people(client):
    """Tokens of everyone the tests act as (a second worker in township A, one in B)."""
    h = hash_password(county.PASSWORD)
    client.app.state.store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A2",)),
                                      UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    names = ("admin", "operator", "leader-A", "leader-B", "worker-A1", "worker-A2", "worker-B1", "dept-religion")
    return {name: login(client, name) for name in names}


@pytest.fixture(scope="module")
def day(client, people):
    """worker-A1's patrol of two hours, uploaded in shuffled overlapping batches, then a batch of bad fixes;
    returns (patrol id, the accepted fixes in time order)."""
    worker = people["worker-A1"]
    r = client.post("/patrols", json={"grid_code": "A1", "started_at": _iso(DAY), "mode": "walking"}, headers=worker)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    fixes = _fixes()
    batches = [fixes[i:i + 100] for i in range(0, len(fixes), 70)]  # 30 fixes of each come again in the next
    random.Random(11).shuffle(batches)
    for batch in batches:
        r = client.post(f"/patrols/{pid}/points", json={"points": random.Random(len(batch)).sample(batch, len(batch))},
                        headers=worker)
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
    spike_at = DAY + timedelta(seconds=100 * STEP_S + 5)
    bad = [{"id": "zero", "time": _iso(DAY + timedelta(seconds=33)), "lon": 0, "lat": 0},
           {"id": "spike", "time": _iso(spike_at), "lon": 100.4, "lat": 33.45},  # 30 km away in 5 s
           {"id": "future", "time": _iso(datetime.now(UTC) + timedelta(days=2)), "lon": 100.1, "lat": 33.2},
           fixes[5], fixes[500]]  # duplicates
    r = client.post(f"/patrols/{pid}/points", json={"points": bad}, headers=worker)
    body = r.json()
    assert [p["status"] for p in body["points"]] == ["rejected", "rejected", "rejected", "duplicate", "duplicate"]
    return pid, fixes


def test_replay_returns_every_unique_accepted_fix_in_time_order_and_validates(client, people, day):
    pid, fixes = day
    r = client.get(f"{ITEMS}/{pid}/tgsequence", headers=people["worker-A1"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    validate(body, response_schema(TGS))
    assert body["numberMatched"] == body["numberReturned"] == 1
    [moving] = body["geometrySequence"]
    assert moving["type"] == "MovingPoint" and moving["interpolation"] == "Linear" and moving["id"] == "1"
    assert moving["datetimes"] == [f["time"] for f in fixes]  # the rejected ones are not there, nothing twice
    assert moving["coordinates"] == [[f["lon"], f["lat"]] for f in fixes]
    validate(moving, "temporalPrimitiveGeometry")


def test_the_track_has_the_right_mileage_and_duration(client, people, day):
    pid, fixes = day
    props = client.get(f"{ITEMS}/{pid}", headers=people["worker-A1"]).json()["properties"]
    assert props["point_count"] == FIXES
    assert props["distance_m"] == pytest.approx((FIXES - 1) * STEP_M, abs=0.05)
    assert props["duration_s"] == (FIXES - 1) * STEP_S
    curve = client.get(f"{ITEMS}/{pid}/tgsequence/1/distance", headers=people["worker-A1"]).json()
    assert curve["valueSequence"][0]["values"][-1] == pytest.approx(props["distance_m"], abs=0.05)


def test_the_mf_json_feature_validates_and_movingpandas_reads_back_the_same_points(client, people, day):
    pid, fixes = day
    r = client.get(f"{ITEMS}/{pid}", params={"f": "mfjson"}, headers=people["leader-A"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    validate(body, response_schema("/collections/{collectionId}/items/{mFeatureId}"))
    validate(body, "movingFeature-mfjson")
    assert body["time"] == [body["properties"]["started_at"], None]  # still active: no end yet
    assert datetime.fromisoformat(body["time"][0]) == DAY
    with warnings.catch_warnings():
        # movingpandas warns about optional packages it does without, and that it keeps UTC as naive times
        warnings.simplefilter("ignore")
        from movingpandas.io import read_mf_dict
        traj = read_mf_dict(body, traj_id=pid)
    df = traj.df
    assert len(df) == FIXES
    assert np.allclose(df.geometry.x.to_numpy(), [f["lon"] for f in fixes], atol=1e-12, rtol=0)
    assert np.allclose(df.geometry.y.to_numpy(), [f["lat"] for f in fixes], atol=1e-12, rtol=0)
    times = [t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC") for t in df.index]
    assert [t.to_pydatetime() for t in times] == [DAY + timedelta(seconds=i * STEP_S) for i in range(FIXES)]


def test_plain_geojson_stays_plain(client, people, day):
    pid, _ = day
    r = client.get(f"{ITEMS}/{pid}", headers={**people["operator"], "Accept": "application/geo+json"})
    assert r.status_code == 200 and "temporalGeometry" not in r.json()
    assert r.json()["geometry"]["type"] == "LineString"


def test_a_datetime_window_keeps_its_fixes_and_sub_trajectory_cuts_at_interpolated_ends(client, people, day):
    pid, fixes = day
    who = people["operator"]
    a, b = DAY + timedelta(seconds=95), DAY + timedelta(seconds=205)
    window = f"{_iso(a)}/{_iso(b)}"
    plain = client.get(f"{ITEMS}/{pid}/tgsequence", params={"datetime": window}, headers=who).json()
    validate(plain, "temporalGeometrySequence")
    assert plain["geometrySequence"][0]["datetimes"] == [f["time"] for f in fixes[10:21]]
    cut = client.get(f"{ITEMS}/{pid}/tgsequence", params={"datetime": window, "subTrajectory": "true"},
                     headers=who).json()
    validate(cut, "temporalGeometrySequence")
    moving = cut["geometrySequence"][0]
    assert moving["datetimes"] == [_iso(a)] + [f["time"] for f in fixes[10:21]] + [_iso(b)]
    mid = [(fixes[9]["lon"] + fixes[10]["lon"]) / 2, (fixes[9]["lat"] + fixes[10]["lat"]) / 2]
    assert moving["coordinates"][0] == pytest.approx(mid, abs=1e-9)
    assert moving["interpolation"] == "Linear"
    empty = client.get(f"{ITEMS}/{pid}/tgsequence", params={"datetime": "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z"},
                       headers=who).json()
    assert empty["geometrySequence"] == [] and empty["numberMatched"] == 0


def test_leaf_gives_interpolated_positions_at_the_instants(client, people, day):
    pid, fixes = day
    instants = [DAY - timedelta(hours=1), DAY + timedelta(seconds=5), DAY + timedelta(seconds=20),
                DAY + timedelta(days=1)]  # the first and the last lie outside the patrol: no position there
    r = client.get(f"{ITEMS}/{pid}/tgsequence", params={"leaf": ",".join(_iso(t) for t in instants)},
                   headers=people["operator"])
    body = r.json()
    validate(body, "temporalGeometrySequence")
    moving = body["geometrySequence"][0]
    assert moving["interpolation"] == "Discrete"
    assert moving["datetimes"] == [_iso(instants[1]), _iso(instants[2])]
    assert moving["coordinates"][0] == pytest.approx([(fixes[0]["lon"] + fixes[1]["lon"]) / 2,
                                                      (fixes[0]["lat"] + fixes[1]["lat"]) / 2], abs=1e-9)
    assert moving["coordinates"][1] == [fixes[2]["lon"], fixes[2]["lat"]]


@pytest.mark.parametrize("kind,expected", [("distance", None), ("velocity", 1.2), ("acceleration", 0.0)])
def test_distance_velocity_and_acceleration_curves(client, people, day, kind, expected):
    pid, fixes = day
    r = client.get(f"{ITEMS}/{pid}/tgsequence/1/{kind}", headers=people["worker-A1"])
    assert r.status_code == 200, r.text
    body = r.json()
    validate(body, response_schema(f"{TGS}/{{tGeometryId}}/{kind}"))
    assert body["type"] == "TReal" and body["name"] == kind
    [seq] = body["valueSequence"]
    assert seq["datetimes"] == [f["time"] for f in fixes] and seq["interpolation"] == "Linear"
    values = np.array(seq["values"])
    if kind == "distance":
        assert np.allclose(values, np.arange(FIXES) * STEP_M, atol=0.05)
    else:
        assert np.allclose(values, expected, atol=0.01)
    leaf = client.get(f"{ITEMS}/{pid}/tgsequence/1/{kind}", params={"leaf": _iso(DAY + timedelta(seconds=15))},
                      headers=people["worker-A1"]).json()
    assert leaf["valueSequence"][0]["interpolation"] == "Discrete"
    assert leaf["valueSequence"][0]["values"] == pytest.approx([1.5 * STEP_M if kind == "distance" else expected],
                                                               abs=0.01)


@pytest.mark.parametrize("who,status", [
    ("worker-A1", 200), ("admin", 200), ("operator", 200), ("leader-A", 200),
    ("worker-A2", 404),  # the same township, another worker's patrol
    ("leader-B", 404), ("worker-B1", 404), ("dept-religion", 404), (None, 404)])
def test_who_may_replay_whose_patrol(client, people, day, who, status):
    pid, _ = day
    headers = people[who] if who else {}
    for path in (f"{ITEMS}/{pid}/tgsequence", f"{ITEMS}/{pid}/tgsequence/1/velocity", f"{ITEMS}/{pid}?f=mfjson"):
        r = client.get(path, headers=headers)
        assert r.status_code == status, (path, r.text)
        if status == 404:
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "worker" not in r.json()["detail"]  # nothing told about whose it is


LEAF_1500 = ",".join((DAY + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(1_500))


def test_a_leaf_of_100k_instants_is_refused_before_it_is_parsed():
    leaf = ",".join(_iso(DAY + timedelta(seconds=i)) for i in range(100_000))
    with pytest.raises(BadInput) as err:
        parse_leaf(leaf)
    assert err.value.parameter == "leaf" and "at most 1000" in err.value.message


@pytest.mark.parametrize("path,params,status,parameter", [
    ("{items}/999999/tgsequence", {}, 404, "featureId"),
    ("{items}/abc/tgsequence", {}, 404, "featureId"),
    ("{items}/-1/tgsequence/1/distance", {}, 404, "featureId"),
    ("{items}/99999999999999999999/tgsequence", {}, 404, "featureId"),
    ("{items}/{pid}/tgsequence/2/velocity", {}, 404, "tGeometryId"),
    ("{items}/{pid}/tgsequence/tg-1/acceleration", {}, 404, "tGeometryId"),
    ("{items}/{pid}/tgsequence", {"datetime": "2024-05-04T00:00:00Z/2024-05-03T00:00:00Z"}, 400, "datetime"),
    ("{items}/{pid}/tgsequence", {"datetime": "yesterday"}, 400, "datetime"),
    ("{items}/{pid}/tgsequence", {"datetime": "10000-01-01T00:00:00Z/.."}, 400, "datetime"),
    ("{items}/{pid}/tgsequence", {"datetime": "../..", "subTrajectory": "true"}, 400, "datetime"),
    ("{items}/{pid}/tgsequence", {"subTrajectory": "yes"}, 400, "subTrajectory"),
    ("{items}/{pid}/tgsequence", {"leaf": LEAF_1500}, 400, "leaf"),
    ("{items}/{pid}/tgsequence", {"leaf": "2024-05-03T01:00:10Z,2024-05-03T01:00:05Z"}, 400, "leaf"),
    ("{items}/{pid}/tgsequence", {"leaf": "2024-05-03T01:00:10Z,2024-05-03T01:00:10Z"}, 400, "leaf"),
    ("{items}/{pid}/tgsequence", {"leaf": "2024-05-03T01:00:10Z,noon"}, 400, "leaf"),
    ("{items}/{pid}/tgsequence", {"leaf": "2024-05-03T01:00:10Z", "subTrajectory": "true",
                                  "datetime": "2024-05-03T01:00:00Z/2024-05-03T02:00:00Z"}, 400, "leaf"),
    ("{items}/{pid}/tgsequence", {"limit": "0"}, 400, "limit"),
    ("{items}/{pid}/tgsequence", {"limit": "10001"}, 400, "limit"),
    ("{items}/{pid}/tgsequence", {"limit": "many"}, 400, "limit"),
    ("{items}/{pid}/tgsequence", {"bbox": "1,2,3"}, 400, "bbox"),
    ("{items}/{pid}/tgsequence", {"offset": "5"}, 400, "offset"),
    ("{items}/{pid}/tgsequence", {"f": "xml"}, 400, "f"),
    ("{items}/{pid}/tgsequence/1/distance", {"subTemporalValue": "true"}, 400, "datetime"),
    ("{items}/{pid}/tgsequence/1/distance", {"bbox": "100,33,101,34"}, 400, "bbox"),
    ("{items}/{pid}", {"f": "mfjson", "crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, 400, "crs"),
    ("/collections/events/items/1", {"f": "mfjson"}, 400, "f"),
])
def test_bad_input_is_a_problem_naming_the_parameter(client, people, day, path, params, status, parameter):
    pid, _ = day
    r = client.get(path.format(items=ITEMS, pid=pid), params=params, headers=people["operator"])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == parameter


def test_a_bbox_selects_the_track_only_where_it_runs(client, people, day):
    pid, fixes = day
    near = f"{fixes[0]['lon'] - 0.001},{fixes[0]['lat'] - 0.001},{fixes[0]['lon'] + 0.001},{fixes[0]['lat'] + 0.001}"
    hit = client.get(f"{ITEMS}/{pid}/tgsequence", params={"bbox": near}, headers=people["operator"]).json()
    assert hit["numberMatched"] == 1 and len(hit["geometrySequence"][0]["datetimes"]) == FIXES
    miss = client.get(f"{ITEMS}/{pid}/tgsequence", params={"bbox": "100.6,33.0,100.7,33.1"},
                      headers=people["operator"]).json()
    assert miss["numberMatched"] == 0 and miss["geometrySequence"] == []


def test_a_patrol_without_fixes_replays_as_nothing_moving(client, people, day):
    worker = people["worker-A2"]  # worker-A1's patrol of the day is still open
    r = client.post("/patrols", json={"grid_code": "A2"}, headers=worker)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    seq = client.get(f"{ITEMS}/{pid}/tgsequence", headers=worker).json()
    validate(seq, response_schema(TGS))
    assert seq["geometrySequence"] == [] and seq["numberMatched"] == 0
    feature = client.get(f"{ITEMS}/{pid}", params={"f": "mfjson"}, headers=worker).json()
    validate(feature, response_schema("/collections/{collectionId}/items/{mFeatureId}"))
    assert "temporalGeometry" not in feature and feature["time"][1] is None
    curve = client.get(f"{ITEMS}/{pid}/tgsequence/1/distance", headers=worker).json()
    assert curve["valueSequence"] == []


def test_a_stopped_patrol_is_revalidated_with_its_etag_and_a_change_gives_a_new_one(client, people, day):
    worker = people["worker-B1"]
    r = client.post("/patrols", json={"grid_code": "B1", "started_at": _iso(DAY)}, headers=worker)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    points = [{"id": f"b{i}", "time": _iso(DAY + timedelta(seconds=10 * i)), "lon": 100.6 + i * 1e-4, "lat": 33.2}
              for i in range(20)]
    assert client.post(f"/patrols/{pid}/points", json={"points": points}, headers=worker).status_code == 200
    paths = (f"{ITEMS}/{pid}/tgsequence", f"{ITEMS}/{pid}/tgsequence/1/velocity", f"{ITEMS}/{pid}?f=mfjson")
    for path in paths:  # running: it changes with every batch, no validator
        assert "etag" not in client.get(path, headers=worker).headers
    assert client.post(f"/patrols/{pid}/stop", headers=worker).status_code == 200
    tags = []
    for path in paths:
        first = client.get(path, headers=worker)
        tag = first.headers["etag"]
        tags.append(tag)
        again = client.get(path, headers={**worker, "If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
        window = client.get(path, params={"datetime": f"{_iso(DAY)}/{_iso(DAY + timedelta(seconds=50))}"},
                            headers={**worker, "If-None-Match": tag})
        assert window.status_code == 200  # another question, another answer
        # Whoever may not see the patrol learns nothing from a tag: still 404.
        assert client.get(path, headers={**people["worker-A1"], "If-None-Match": tag}).status_code == 404
    assert len(set(tags)) == 3
    r = client.patch(f"{ITEMS}/{pid}", json={"properties": {"mode": "riding"}}, headers=people["admin"])
    assert r.status_code == 200, r.text
    changed = client.get(paths[2], headers={**worker, "If-None-Match": tags[2]})
    assert changed.status_code == 200 and changed.json()["properties"]["mode"] == "riding"
    assert changed.headers["etag"] != tags[2]
