"""Spatial routing of reports on both stores: a point on a shared border is assigned to the smallest code and
the timeline says so, a point near a border is flagged with its neighbours, outside the county is 422, and a
dispatcher re-routes by moving the point (`relocate`)."""

from __future__ import annotations

import pytest

from api.settings import Settings
from layers import routing
from tests.api.conftest import login

ITEMS = "/collections/events/items"
# Township A spans lon 100.0-100.5 (grids A1 | A2 at 100.25), B spans 100.5-101.0 (B1 | B2 at 100.75).


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the tiny county's operator, leaders and worker."""
    return {name: login(client, name) for name in ("operator", "leader-A", "leader-B", "worker-A1")}


def _report(client, who, lon, lat, title="pile of rubbish"):
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"title": title, "type": "garbage", "reported_at": "2024-08-01T08:00:00Z"}}
    return client.post(ITEMS, json=body, headers={**who, "Content-Type": "application/geo+json"})


def _route(client, who, fid):
    rows = client.get(f"/events/{fid}/timeline", headers=who).json()["timeline"]
    return [r for r in rows if r["action"] == "route"][0]


def test_a_point_on_the_shared_border_goes_to_the_smallest_code_and_the_timeline_says_so(client, people):
    op = people["operator"]
    r = _report(client, op, 100.5, 33.25)
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert (props["township_code"], props["grid_code"], props["near_border"]) == ("A", "A2", True)
    route = _route(client, op, r.json()["id"])
    assert "on the border of townships A, B: assigned to A" in route["note"]
    assert route["data"]["on_border_townships"] == ["A", "B"]
    assert route["data"]["neighbour_townships"] == ["B"] and route["data"]["neighbour_grids"] == ["B1"]


def test_a_point_near_a_border_is_flagged_with_its_neighbours(client, people):
    op = people["operator"]
    r = _report(client, op, 100.4998, 33.25)  # ~19 m west of the A|B border
    props = r.json()["properties"]
    assert (props["township_code"], props["grid_code"], props["near_border"]) == ("A", "A2", True)
    route = _route(client, op, r.json()["id"])
    assert route["data"]["near_border"] is True and route["data"]["border_metres"] == 50
    assert route["data"]["neighbour_townships"] == ["B"] and "on_border_townships" not in route["data"]
    assert "within 50 m of township B, grid B1" in route["note"]
    inner = _report(client, op, 100.2497, 33.3).json()  # ~28 m from the A1|A2 grid border, same township
    assert inner["properties"]["near_border"] is True
    assert _route(client, op, inner["id"])["data"]["neighbour_grids"] == ["A2"]
    far = _report(client, op, 100.1, 33.1).json()
    assert far["properties"]["near_border"] is False
    route = _route(client, op, far["id"])
    assert route["data"]["near_border"] is False and route["note"] == "routed to grid A1 of township A"


def test_the_border_distance_is_a_setting(client, people, monkeypatch):
    assert Settings.from_env({"ONEMAP_BORDER_FLAG_METERS": "10"}).border_flag_metres == 10
    for bad in (-1, float("nan"), 1e9):
        with pytest.raises(ValueError, match="ONEMAP_BORDER_FLAG_METERS"):
            routing.configure(bad)
    monkeypatch.setattr(routing.POLICY, "border_metres", 10.0)
    r = _report(client, people["operator"], 100.4998, 33.25)  # ~19 m: beyond 10 m
    assert r.json()["properties"]["near_border"] is False


@pytest.mark.parametrize("lon, lat", [(102.0, 33.2), (100.2, 35.0), (0, 0)])
def test_a_report_outside_the_county_is_422_and_writes_nothing(client, people, lon, lat):
    r = _report(client, people["operator"], lon, lat, title=f"lost at {lon},{lat}")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == "geometry" and "outside the county" in r.json()["detail"]
    found = client.get(ITEMS, params={"filter": f"title = 'lost at {lon},{lat}'"}, headers=people["operator"])
    assert found.json()["numberMatched"] == 0


def _relocate(client, who, fid, body):
    return client.post(f"/events/{fid}/actions/relocate", json=body, headers=who)


def test_a_dispatcher_relocates_an_event_routing_runs_again_and_the_timeline_says_from_where_to_where(
        client, people):
    op = people["operator"]
    fid = _report(client, people["worker-A1"], 100.4998, 33.25).json()["id"]
    seq = client.app.state.store.change_bounds()[1]
    r = _relocate(client, op, fid, {"lon": 100.8, "lat": 33.2, "note": "the pile is across the river"})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["township_code"], props["grid_code"], props["near_border"], props["status"]) == (
        "B", "B2", False, "reported")
    assert r.json()["geometry"]["coordinates"] == [100.8, 33.2]
    step = client.get(f"/events/{fid}/timeline", headers=op).json()["timeline"][-1]
    assert step["action"] == "relocate" and step["note"] == "the pile is across the river"
    assert step["data"]["from"]["township_code"] == "A" and step["data"]["from"]["grid_code"] == "A2"
    assert step["data"]["to"]["township_code"] == "B" and step["data"]["to"]["grid_code"] == "B2"
    assert step["data"]["routing"] == "routed to grid B2 of township B"
    [change] = [c for c in client.app.state.store.changes_since(seq) if c.fid == fid]
    assert (change.township_before, change.township_after) == ("A", "B")  # the stream moves it
    back = _relocate(client, op, fid, {"geometry": {"type": "Point", "coordinates": [100.5, 33.3]}})
    assert back.json()["properties"]["township_code"] == "A" and back.json()["properties"]["near_border"] is True


def test_relocation_is_refused_outside_the_county_and_into_a_township_the_caller_may_not_dispatch_in(
        client, people):
    fid = _report(client, people["worker-A1"], 100.3, 33.3).json()["id"]
    before = client.get(f"{ITEMS}/{fid}", headers=people["operator"]).json()
    r = _relocate(client, people["operator"], fid, {"lon": 101.5, "lat": 33.2})
    assert r.status_code == 422 and r.json()["parameter"] == "geometry"
    r = _relocate(client, people["leader-A"], fid, {"lon": 100.8, "lat": 33.2})  # B is not his
    assert r.status_code == 403 and r.json()["parameter"] == "geometry"
    assert _relocate(client, people["worker-A1"], fid, {"lon": 100.2, "lat": 33.2}).status_code == 403
    assert _relocate(client, people["leader-B"], fid, {"lon": 100.8, "lat": 33.2}).status_code == 404
    assert _relocate(client, people["leader-A"], fid, {"lon": 100.1, "lat": 33.2}).status_code == 200  # within A
    moved = client.get(f"{ITEMS}/{fid}", headers=people["operator"]).json()
    assert moved["geometry"]["coordinates"] == [100.1, 33.2] and moved["properties"]["grid_code"] == "A1"
    assert before["properties"]["grid_code"] == "A2"
    steps = [t["action"] for t in client.get(f"/events/{fid}/timeline", headers=people["operator"]).json()["timeline"]]
    assert steps.count("relocate") == 1  # the refused ones wrote nothing


@pytest.mark.parametrize("body, field", [
    ({}, "lon"), ({"lon": 100.2}, "lat"), ({"lat": 33.2}, "lon"), ({"lon": "100.2", "lat": 33.2}, "lon"),
    ({"lon": 100.2, "lat": 91}, "lat"), ({"lon": 181, "lat": 33.2}, "lon"), ({"lon": True, "lat": 33.2}, "lon"),
    ({"geometry": {"type": "LineString", "coordinates": [[100, 33], [100.1, 33.1]]}}, "geometry"),
    ({"geometry": {"type": "Point", "coordinates": [100.2]}}, "geometry"), ({"geometry": "here"}, "geometry"),
    ({"lon": 100.2, "lat": 33.2, "note": 5}, "note"),
])
def test_a_bad_relocate_body_is_400_naming_the_field(client, people, body, field):
    fid = _report(client, people["worker-A1"], 100.3, 33.2).json()["id"]
    r = _relocate(client, people["operator"], fid, body)
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text


def test_a_finished_event_is_not_relocated(client, people):
    op = people["operator"]
    fid = _report(client, people["worker-A1"], 100.3, 33.2).json()["id"]
    assert client.post(f"/events/{fid}/actions/reject", json={}, headers=op).status_code == 200
    r = _relocate(client, op, fid, {"lon": 100.2, "lat": 33.2})
    assert r.status_code == 409 and "rejected" in r.json()["detail"]


def test_a_put_or_patch_never_moves_an_event_only_relocate_does(client, people):
    op, worker = people["operator"], people["worker-A1"]
    made = _report(client, worker, 100.3, 33.2).json()
    url = f"{ITEMS}/{made['id']}"
    moved = {**made, "geometry": {"type": "Point", "coordinates": [100.8, 33.2]}}
    moved["properties"] = {k: v for k, v in made["properties"].items() if k in ("title", "type", "reported_at")}
    for r in (client.put(url, json=moved, headers={**op, "Content-Type": "application/geo+json"}),
              client.patch(url, json={"geometry": moved["geometry"]}, headers=op)):
        assert r.status_code == 409 and r.json()["parameter"] == "geometry", r.text
        assert "relocate" in r.json()["detail"]
    same = {**moved, "geometry": made["geometry"], "properties": {**moved["properties"], "title": "renamed"}}
    r = client.put(url, json=same, headers={**op, "Content-Type": "application/geo+json"})
    assert r.status_code == 200 and r.json()["properties"]["title"] == "renamed"  # the same point: fine
    after = client.get(url, headers=op).json()
    assert after["geometry"]["coordinates"] == [100.3, 33.2] and after["properties"]["township_code"] == "A"
