"""Event dispatch over HTTP on both stores: the lifecycle, who may do what, the timeline, If-Match, two
dispatchers at once, and event types as data."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from layers import dispatch
from tests.api import county
from tests.api.conftest import login

ITEMS = "/collections/events/items"


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the people of the tiny county, plus a second worker in A and one in B."""
    h = hash_password(county.PASSWORD)
    client.app.state.store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A2",)),
                                      UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    return {name: login(client, name) for name in ("admin", "operator", "leader-A", "leader-B", "worker-A1",
                                                    "worker-A2", "worker-B1")}


def _events(client, people, township: str) -> list[dict]:
    r = client.get(ITEMS, params={"filter": f"township_code = '{township}' AND status = 'reported'",
                                  "limit": 100}, headers=people["admin"])
    return r.json()["features"]


@pytest.fixture
def fresh(client):
    """A new reported event of township A, by worker-A1 (each test takes its own)."""
    [event] = client.app.state.store.insert("events", [Feature(None, Point(100.2, 33.3), {
        "title": "new report", "type": "garbage", "status": "reported", "reported_at": datetime.now(UTC),
        "reporter": "worker-A1"})], Scope.everything())
    return event.id


def _act(client, headers, fid, action, body=None, **extra):
    return client.post(f"/events/{fid}/actions/{action}", json=body or {}, headers={**headers, **extra})


def test_an_event_walks_from_report_to_closure_with_a_rework_loop_and_every_step_on_its_timeline(
        client, people, fresh):
    op, worker = people["operator"], people["worker-A1"]
    steps = [(op, "accept", {"note": "looks real"}, "accepted"),
             (op, "dispatch", {"assignee": "worker-A1", "department": "sanitation"}, "dispatched"),
             (worker, "start", {}, "in_progress"),
             (worker, "handle", {"note": "cleared"}, "handled"),
             (op, "rework", {"note": "still there"}, "in_progress"),
             (worker, "handle", {"note": "cleared again"}, "handled"),
             (op, "verify", {}, "verified"),
             (op, "close", {}, "closed")]
    for who, action, body, status in steps:
        r = _act(client, who, fresh, action, body)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["properties"]["status"] == status
        assert r.headers["etag"] and r.headers["content-type"].startswith("application/geo+json")
    props = r.json()["properties"]
    assert props["assignee"] == "worker-A1" and props["department"] == "sanitation" and props["closed_at"]
    timeline = client.get(f"/events/{fresh}/timeline", headers=op).json()["timeline"]
    assert [(t["action"], t["from_status"], t["to_status"]) for t in timeline] == [
        ("accept", "reported", "accepted"), ("dispatch", "accepted", "dispatched"),
        ("start", "dispatched", "in_progress"), ("handle", "in_progress", "handled"),
        ("rework", "handled", "in_progress"), ("handle", "in_progress", "handled"),
        ("verify", "handled", "verified"), ("close", "verified", "closed")]
    assert [t["actor"] for t in timeline][:3] == ["operator", "operator", "worker-A1"]
    assert timeline[0]["note"] == "looks real" and timeline[1]["data"]["assignee"] == "worker-A1"
    # The map sees it too: the feature in the collection, and one change-log row per action.
    assert client.get(f"{ITEMS}/{fresh}", headers=op).json()["properties"]["status"] == "closed"
    changes = [c for c in client.app.state.store.changes_since(0, 10_000) if c.fid == fresh]
    assert [c.properties.get("status") for c in changes][-8:] == [s[3] for s in steps]
    assert changes[-1].actor == "operator"


def test_an_illegal_transition_is_409_listing_what_is_allowed_now(client, people, fresh):
    r = _act(client, people["operator"], fresh, "close")
    assert r.status_code == 409
    assert r.json()["parameter"] == "action"
    assert "allowed now: accept, reject, merge, escalate, supervise" in r.json()["detail"]


def test_who_may_do_what_is_decided_by_role_grant_and_assignment(client, people, fresh):
    assert _act(client, people["worker-A1"], fresh, "accept").status_code == 403  # no dispatch grant
    assert _act(client, people["leader-B"], fresh, "accept").status_code == 404  # not his township: not there
    assert _act(client, people["worker-B1"], fresh, "accept").status_code == 404
    assert _act(client, people["leader-A"], fresh, "accept").status_code == 200  # his township
    assert _act(client, people["leader-A"], fresh, "dispatch", {"assignee": "worker-A1"}).status_code == 200
    assert _act(client, people["worker-A2"], fresh, "start").status_code == 403  # not the assignee
    assert _act(client, people["worker-A1"], fresh, "start").status_code == 200
    assert client.post(f"/events/{fresh}/actions/accept").status_code == 404  # anonymous: events do not exist


def test_a_stale_if_match_is_412_and_changes_nothing(client, people, fresh):
    op = people["operator"]
    etag = client.get(f"{ITEMS}/{fresh}", headers=op).headers["etag"]
    assert _act(client, op, fresh, "accept", {}, **{"If-Match": etag}).status_code == 200
    r = _act(client, op, fresh, "dispatch", {"assignee": "worker-A1"}, **{"If-Match": etag})
    assert r.status_code == 412
    assert client.get(f"{ITEMS}/{fresh}", headers=op).json()["properties"]["status"] == "accepted"


def test_of_several_dispatchers_acting_at_once_exactly_one_wins(client, people, fresh):
    op = people["operator"]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _act(client, op, fresh, "accept").status_code, range(8)))
    assert sorted(answers) == [200] + [409] * 7
    timeline = client.get(f"/events/{fresh}/timeline", headers=op).json()["timeline"]
    assert [t["action"] for t in timeline] == ["accept"]


def test_a_failed_action_writes_nothing(client, people, fresh):
    op = people["operator"]
    assert _act(client, op, fresh, "accept").status_code == 200
    before = client.get(f"{ITEMS}/{fresh}", headers=op).json()
    for body, field in (({}, "assignee"), ({"assignee": ""}, "assignee"), ({"assignee": "x" * 500}, "assignee"),
                        ({"assignee": "worker-A1", "note": "n" * 5000}, "note")):
        r = _act(client, op, fresh, "dispatch", body)
        assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    assert client.get(f"{ITEMS}/{fresh}", headers=op).json() == before
    assert len(client.get(f"/events/{fresh}/timeline", headers=op).json()["timeline"]) == 1


def test_merge_closes_the_duplicate_into_an_open_original_and_links_both(client, people, fresh):
    op = people["operator"]
    original = _events(client, people, "A")[0]["id"]
    bad = _act(client, op, fresh, "merge", {"into": fresh})
    assert bad.status_code == 400 and bad.json()["parameter"] == "into"
    r = _act(client, op, fresh, "merge", {"into": original, "note": "same pile"})
    assert r.status_code == 200 and r.json()["properties"]["status"] == "merged"
    assert r.json()["properties"]["merged_into"] == original
    linked = client.get(f"/events/{original}/timeline", headers=op).json()["timeline"]
    assert linked[-1]["action"] == "merged-in" and linked[-1]["data"]["duplicate"] == fresh
    assert linked[-1]["data"]["reporter"] == "worker-A1"


def test_escalation_keeps_the_state_and_counts_the_level(client, people, fresh):
    op = people["operator"]
    for level in (1, 2):
        r = _act(client, op, fresh, "escalate", {"note": "stuck"})
        assert r.status_code == 200
        assert r.json()["properties"]["status"] == "reported"
        assert r.json()["properties"]["escalation_level"] == level


@pytest.mark.parametrize("path", ["/events/999999/actions/accept", "/events/99999999999999999999/actions/accept",
                                  "/events/abc/actions/accept", "/events/1/actions/teleport"])
def test_unknown_events_and_actions_are_404(client, people, path):
    r = client.post(path, json={}, headers=people["operator"])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("body, status", [("[1, 2]", 400), ("{", 400), ("[" * 5000 + "]" * 5000, 400),
                                          ('{"note": "' + "x" * 70_000 + '"}', 413)])
def test_a_bad_action_body_is_a_client_error(client, people, fresh, body, status):
    r = client.post(f"/events/{fresh}/actions/accept", content=body,
                    headers={**people["operator"], "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["parameter"] == "body"


def test_another_township_s_timeline_does_not_exist_for_a_leader(client, people, fresh):
    assert client.get(f"/events/{fresh}/timeline", headers=people["leader-B"]).status_code == 404
    assert client.get(f"/events/{fresh}/timeline", headers=people["leader-A"]).status_code == 200


# -- event types -------------------------------------------------------------------------------------------

TYPE = {"code": "stray_dogs", "name": "流浪犬", "deadline_hours": 48, "warn_hours": 12, "verify_required": True,
        "departments": ["agriculture"], "escalation": ["grid", "township", "county"]}


def test_admins_manage_event_types_and_one_in_use_is_retired_not_deleted(client, people):
    admin = people["admin"]
    assert client.post("/event-types", json=TYPE, headers=people["operator"]).status_code == 403
    r = client.post("/event-types", json=TYPE, headers=admin)
    assert r.status_code == 201 and r.json()["deadline_hours"] == 48
    assert client.post("/event-types", json=TYPE, headers=admin).status_code == 409
    assert client.get("/event-types/stray_dogs", headers=admin).json()["name"] == "流浪犬"
    r = client.put("/event-types/stray_dogs", json={**TYPE, "retired": True}, headers=admin)
    assert r.status_code == 200 and r.json()["retired"] is True
    assert client.delete("/event-types/stray_dogs", headers=admin).status_code == 204
    assert client.get("/event-types/stray_dogs", headers=admin).status_code == 404
    client.post("/event-types", json={**TYPE, "code": "garbage", "name": "垃圾"}, headers=admin)
    r = client.delete("/event-types/garbage", headers=admin)  # the tiny county's events use it
    assert r.status_code == 409 and "retire" in r.json()["detail"]


@pytest.mark.parametrize("change, field", [
    ({"code": "Bad Code"}, "code"), ({"deadline_hours": 1e308}, "deadline_hours"),
    ({"deadline_hours": -1}, "deadline_hours"), ({"deadline_hours": "soon"}, "deadline_hours"),
    ({"warn_hours": 100}, "warn_hours"), ({"name": ""}, "name"), ({"name": "n" * 500}, "name"),
    ({"escalation": ["grid", "moon"]}, "escalation"), ({"departments": [["nested"]]}, "departments"),
    ({"colour": "red"}, "colour"), ({"verify_required": "yes"}, "verify_required"),
])
def test_a_bad_event_type_is_400_naming_the_field(client, people, change, field):
    r = client.post("/event-types", json={**TYPE, "code": "checked", **change}, headers=people["admin"])
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text


def test_the_deadline_job_warns_then_marks_overdue_raises_an_alarm_and_escalates_once(client, people):
    store, admin = client.app.state.store, people["admin"]
    client.post("/event-types", json={"code": "fire_hazard", "name": "火灾隐患", "deadline_hours": 4,
                                      "warn_hours": 1, "verify_required": True, "auto_escalate": True},
                headers=admin)
    reported = datetime.now(UTC)
    [event] = store.insert("events", [Feature(None, Point(100.3, 33.2), {
        "title": "smoke", "type": "fire_hazard", "status": "dispatched", "assignee": "worker-A1",
        "reported_at": reported, "deadline": reported + timedelta(hours=4)})], Scope.everything())
    dispatch.check_deadlines(store, at=reported + timedelta(hours=2))
    assert store.get("events", event.id, Scope.everything()).properties["due_state"] is None
    dispatch.check_deadlines(store, at=reported + timedelta(hours=3, minutes=30))
    assert store.get("events", event.id, Scope.everything()).properties["due_state"] == "soon_due"
    dispatch.check_deadlines(store, at=reported + timedelta(hours=5))
    dispatch.check_deadlines(store, at=reported + timedelta(hours=6))  # nothing twice
    now_ = store.get("events", event.id, Scope.everything()).properties
    assert (now_["due_state"], now_["escalation_level"], now_["status"]) == ("overdue", 1, "dispatched")
    timeline = client.get(f"/events/{event.id}/timeline", headers=admin).json()["timeline"]
    assert [t["action"] for t in timeline] == ["soon-due", "overdue", "escalate"]
    assert timeline[-1]["data"] == {"level": 1, "automatic": True}
    alarms = client.get("/collections/alarms/items", params={"filter": f"event_id = {event.id}"},
                        headers=admin).json()
    assert alarms["numberMatched"] == 1
    assert alarms["features"][0]["properties"]["alarm_kind"] == "overdue_event"
    assert alarms["features"][0]["properties"]["township_code"] == "A"


def test_a_grid_s_team_is_data_admins_maintain_and_leaders_of_other_townships_cannot_see(client, people):
    admin = people["admin"]
    team = {"bindings": [{"username": "worker-A1", "role": "full_time"}, {"username": "leader-A", "role": "leader"},
                         {"username": "dept-religion", "role": "department"}]}
    assert client.put("/grids/A1/bindings", json=team, headers=people["operator"]).status_code == 403
    r = client.put("/grids/A1/bindings", json=team, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["bindings"] == [{"username": "dept-religion", "role": "department"},
                                    {"username": "worker-A1", "role": "full_time"},
                                    {"username": "leader-A", "role": "leader"}]
    assert client.get("/grids/A1/bindings", headers=people["leader-A"]).json() == r.json()
    assert client.get("/grids/A1/bindings", headers=people["leader-B"]).status_code == 404
    assert client.get("/grids/Z9/bindings", headers=admin).status_code == 404
    for bad in ({"bindings": [{"username": "nobody", "role": "leader"}]},
                {"bindings": [{"username": "worker-A1", "role": "boss"}]}, {"bindings": "all"}, [1]):
        r = client.put("/grids/A1/bindings", json=bad, headers=admin)
        assert r.status_code == 400 and r.json()["parameter"] == "bindings", r.text
    assert len(client.get("/grids/A1/bindings", headers=admin).json()["bindings"]) == 3  # nothing half-written


def test_a_report_is_routed_checked_against_its_type_and_given_its_deadline(client, people):
    worker, admin = people["worker-A1"], people["admin"]
    client.put("/grids/A1/bindings", json={"bindings": [{"username": "worker-A1", "role": "full_time"}]},
               headers=admin)
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.1, 33.1]},
            "properties": {"title": "smoke behind the school", "type": "fire_hazard",
                           "reported_at": "2024-06-01T08:00:00Z"}}
    r = client.post(ITEMS, json=body, headers={**worker, "Content-Type": "application/geo+json"})
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert (props["status"], props["township_code"], props["grid_code"]) == ("reported", "A", "A1")
    assert props["deadline"] == "2024-06-01T12:00:00Z"  # fire hazards: 4 hours
    timeline = client.get(f"/events/{r.json()['id']}/timeline", headers=worker).json()["timeline"]
    assert [t["action"] for t in timeline] == ["report", "route", "deadline"]
    assert timeline[0]["actor"] == "worker-A1"
    assert timeline[1]["data"]["grid_code"] == "A1"
    assert {"username": "worker-A1", "role": "full_time"} in timeline[1]["data"]["candidates"]
    for kind in ("teleportation", "stray_cats"):
        if kind == "stray_cats":
            client.post("/event-types", json={"code": kind, "name": "猫", "retired": True}, headers=admin)
        bad = {**body, "properties": {**body["properties"], "type": kind, "title": f"bad {kind}"}}
        r = client.post(ITEMS, json=bad, headers={**worker, "Content-Type": "application/geo+json"})
        assert r.status_code == 400 and r.json()["parameter"] == "type", r.text
        found = client.get(ITEMS, params={"filter": f"title = 'bad {kind}'"}, headers=admin).json()
        assert found["numberMatched"] == 0  # nothing half-written


def test_a_report_near_an_open_event_of_its_type_is_flagged_as_a_probable_duplicate(client, people):
    worker, op = {**people["worker-A1"], "Content-Type": "application/geo+json"}, people["operator"]

    def report(lon, lat, kind="road_damage", at="2024-07-01T08:00:00Z"):
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"title": "pothole", "type": kind, "reported_at": at}}
        r = client.post(ITEMS, json=body, headers=worker)
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        return fid, [t for t in client.get(f"/events/{fid}/timeline", headers=op).json()["timeline"]
                     if t["action"] == "probable-duplicate"]

    first, flags = report(100.40, 33.40)
    assert flags == []
    second, flags = report(100.4005, 33.4005, at="2024-07-01T20:00:00Z")  # ~70 m away, 12 h later
    assert [f["data"]["candidates"] for f in flags] == [[first]]
    assert report(100.4005, 33.4005, kind="wildlife")[1] == []  # another type
    assert report(100.41, 33.40)[1] == []  # ~930 m away
    assert report(100.4, 33.4, at="2024-07-10T08:00:00Z")[1] == []  # nine days later
    merged = _act(client, op, second, "merge", {"into": first})
    assert merged.status_code == 200 and merged.json()["properties"]["merged_into"] == first
