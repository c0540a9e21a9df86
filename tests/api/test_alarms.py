"""Alarms over HTTP on both stores: rules as data (/alarm-rules: admins write, operators read, every bad field
named), readings raising alarms, the lifecycle (ack, resolve, to-event with a linked event), who may act on
which township's alarms, workflow properties refused to PATCH, and /stats/alarms within scope."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from layers import alarm_rules
from tests.api.conftest import login

RULES = "/alarm-rules"


@pytest.fixture(scope="module")
def sites(client):
    """The seeded rules; a temperature sensor and a water station in A, a temperature sensor in B."""
    store = client.app.state.store
    alarm_rules.seed_defaults(store)
    made = store.insert("monitoring_sites", [
        Feature(None, Point(100.1, 33.1), {"site_code": "T-A1", "name": "old house", "kind": "temperature"}),
        Feature(None, Point(100.4, 33.2), {"site_code": "W-A1", "name": "river", "kind": "water_quality"}),
        Feature(None, Point(100.8, 33.2), {"site_code": "T-B1", "name": "barn", "kind": "temperature"})],
        Scope.everything())
    return {f.properties["site_code"]: f.id for f in made}


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the tiny county's people."""
    return {name: login(client, name) for name in ("admin", "operator", "leader-A", "leader-B", "worker-A1")}


_clock = [datetime.now(UTC) - timedelta(hours=12)]


def _hot(client, people, site_id, value=80.0) -> dict:
    """Send one temperature reading (a minute after the last one sent) and return the site's open alarm."""
    _clock[0] += timedelta(minutes=1)
    r = client.post("/readings", json={"readings": [{
        "site_id": site_id, "metric": "temperature", "value": value, "unit": "°C",
        "observed_at": _clock[0].isoformat().replace("+00:00", "Z")}]}, headers=people["operator"])
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    found = client.get("/collections/alarms/items", headers=people["admin"], params={
        "filter": f"site_id = {site_id} AND status <> 'resolved'", "limit": 10}).json()["features"]
    return found[0] if found else {}


def _act(client, headers, alarm_id, action, body=None):
    return client.post(f"/alarms/{alarm_id}/actions/{action}", content=json.dumps(body if body is not None else {}),
                       headers={**headers, "Content-Type": "application/json"})


# -- rules -------------------------------------------------------------------------------------------------
def test_the_seeded_rules_are_listed_for_operators_and_hidden_from_others(client, people, sites):
    r = client.get(RULES, headers=people["operator"])
    assert r.status_code == 200, r.text
    rules = r.json()["alarm_rules"]
    temp = [x for x in rules if x["site_kind"] == "temperature" and x["metric"] == "temperature"]
    assert temp[0]["condition"] == "above" and temp[0]["threshold"] == 57 and temp[0]["severity"] == "critical"
    ph = [x for x in rules if x["metric"] == "ph"][0]
    assert ph["band"] == [6.5, 8.5] and ph["clear_band"][0] > 6.5
    assert {x["condition"] for x in rules if x["metric"] is None} == {"no_data"}
    assert client.get(RULES, params={"site_kind": "air"}, headers=people["admin"]).json()["alarm_rules"]
    one = client.get(f"{RULES}/{temp[0]['id']}", headers=people["operator"])
    assert one.status_code == 200 and one.json() == temp[0]
    assert client.get(RULES, headers=people["leader-A"]).status_code == 403
    assert client.get(RULES).status_code in (401, 403)


def test_an_admin_adds_replaces_and_deletes_a_site_override(client, people, sites):
    body = {"site_id": sites["W-A1"], "metric": "turbidity", "condition": "above", "threshold": 30, "clear": 25,
            "for_readings": 2, "severity": "critical", "auto_resolve": False, "event_type": "water_pollution"}
    assert client.post(RULES, json=body, headers=people["operator"]).status_code == 403
    r = client.post(RULES, json=body, headers=people["admin"])
    assert r.status_code == 201, r.text
    rule = r.json()
    assert r.headers["location"] == f"/alarm-rules/{rule['id']}"
    assert rule["site_kind"] == "water_quality" and rule["threshold"] == 30 and rule["clear"] == 25
    r = client.put(f"{RULES}/{rule['id']}", json={**body, "threshold": 35}, headers=people["admin"])
    assert r.status_code == 200 and r.json()["threshold"] == 35, r.text
    listed = client.get(RULES, params={"site_id": sites["W-A1"]}, headers=people["admin"]).json()["alarm_rules"]
    assert [x["id"] for x in listed] == [rule["id"]]
    assert client.delete(f"{RULES}/{rule['id']}", headers=people["operator"]).status_code == 403
    assert client.delete(f"{RULES}/{rule['id']}", headers=people["admin"]).status_code == 204
    assert client.get(f"{RULES}/{rule['id']}", headers=people["admin"]).status_code == 404


GOOD = {"site_kind": "temperature", "metric": "temperature", "condition": "above", "threshold": 60}
BAD_RULES = [
    ([1, 2], "body"),
    ({**GOOD, "colour": "red"}, "colour"),
    ({**GOOD, "condition": "sideways"}, "condition"),
    ({**GOOD, "site_kind": "volcano"}, "site_kind"),
    ({**GOOD, "metric": "ph"}, "metric"),
    ({**GOOD, "metric": None}, "metric"),
    ({**GOOD, "threshold": None}, "threshold"),
    ({**GOOD, "threshold": "hot"}, "threshold"),
    ({**GOOD, "threshold": True}, "threshold"),
    ({**GOOD, "threshold": 1e300}, "threshold"),
    ({**GOOD, "threshold": 10**400}, "threshold"),
    ({**GOOD, "threshold": float("nan")}, "threshold"),
    ({**GOOD, "threshold": float("inf")}, "threshold"),
    ({**GOOD, "clear": 70}, "clear"),
    ({**GOOD, "condition": "below", "clear": 50}, "clear"),
    ({**GOOD, "band": [1, 2]}, "band"),
    ({**GOOD, "condition": "outside", "threshold": None, "band": [9, 2]}, "band"),
    ({**GOOD, "condition": "outside", "threshold": None, "band": [2]}, "band"),
    ({**GOOD, "condition": "outside", "threshold": None, "band": [2, 9], "clear_band": [1, 8]}, "clear_band"),
    ({**GOOD, "for_readings": 0}, "for_readings"),
    ({**GOOD, "for_readings": 2**70}, "for_readings"),
    ({**GOOD, "for_seconds": -5}, "for_seconds"),
    ({**GOOD, "for_seconds": 10**12}, "for_seconds"),
    ({**GOOD, "for_seconds": float("nan")}, "for_seconds"),
    ({"site_kind": "temperature", "condition": "no_data"}, "for_seconds"),
    ({"site_kind": "temperature", "condition": "no_data", "for_seconds": 60, "threshold": 3}, "threshold"),
    ({**GOOD, "severity": "apocalyptic"}, "severity"),
    ({**GOOD, "auto_resolve": "yes"}, "auto_resolve"),
    ({**GOOD, "enabled": 1}, "enabled"),
    ({**GOOD, "event_type": "no_such_type"}, "event_type"),
    ({**GOOD, "name": ""}, "name"),
    ({**GOOD, "name": "x" * 5000}, "name"),
    ({**GOOD, "name": "a\x00b"}, "name"),
    ({**GOOD, "name": "\ud800"}, "name"),
    ({**GOOD, "event_type": "fire\x00hazard"}, "event_type"),
    ({**GOOD, "site_id": 999_999_999}, "site_id"),
    ({**GOOD, "site_id": 2**70}, "site_id"),
    ({**GOOD, "site_id": "T-A1"}, "site_id"),
]


@pytest.mark.parametrize(("body", "parameter"), BAD_RULES, ids=[f"{p}-{i}" for i, (_, p) in enumerate(BAD_RULES)])
def test_a_bad_rule_is_a_400_naming_the_field_and_writes_nothing(client, people, sites, body, parameter):
    before = len(client.get(RULES, headers=people["admin"]).json()["alarm_rules"])
    text = json.dumps(body, allow_nan=True)  # NaN and Infinity as a sloppy client sends them
    r = client.post(RULES, content=text, headers={**people["admin"], "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == parameter, r.json()
    some = client.get(RULES, headers=people["admin"]).json()["alarm_rules"][0]
    r = client.put(f"{RULES}/{some['id']}", content=text, headers={**people["admin"], "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["parameter"] == parameter, r.text
    assert len(client.get(RULES, headers=people["admin"]).json()["alarm_rules"]) == before
    assert client.get(f"{RULES}/{some['id']}", headers=people["admin"]).json() == some


def test_a_site_override_of_another_kind_and_unknown_rule_ids(client, people, sites):
    r = client.post(RULES, json={**GOOD, "site_id": sites["W-A1"]}, headers=people["admin"])
    assert r.status_code == 400 and r.json()["parameter"] == "site_kind", r.text
    for rid in ("999999999", "abc", "0", str(2**70)):
        assert client.get(f"{RULES}/{rid}", headers=people["admin"]).status_code == 404
        assert client.put(f"{RULES}/{rid}", json=GOOD, headers=people["admin"]).status_code == 404
        assert client.delete(f"{RULES}/{rid}", headers=people["admin"]).status_code == 404
    assert client.get(RULES, params={"site_id": "x"}, headers=people["admin"]).status_code == 400
    assert client.get(RULES, params={"site_kind": "volcano"}, headers=people["admin"]).status_code == 400
    for metric in ("lava", "ph\x00"):
        r = client.get(RULES, params={"metric": metric}, headers=people["admin"])
        assert r.status_code == 400 and r.json()["parameter"] == "metric", r.text


# -- the lifecycle -----------------------------------------------------------------------------------------
def test_a_hot_reading_raises_an_alarm_that_a_leader_acknowledges_turns_into_an_event_and_resolves(
        client, people, sites):
    alarm = _hot(client, people, sites["T-A1"])
    aid = alarm["id"]
    assert alarm["properties"]["status"] == "raised" and alarm["properties"]["rule_id"]
    assert _hot(client, people, sites["T-A1"], 85)["id"] == aid  # the repeat, not a new alarm
    leader = people["leader-A"]
    r = _act(client, leader, aid, "ack", {"note": "on my way"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.json()["properties"]["status"] == "acknowledged" and r.json()["properties"]["acknowledged_at"]
    r = _act(client, leader, aid, "ack")
    assert r.status_code == 409 and "allowed now: resolve, to-event" in r.json()["detail"], r.text
    r = _act(client, leader, aid, "to-event", {"note": "send the fire team"})
    assert r.status_code == 200, r.text
    event_id = r.json()["properties"]["event_id"]
    event = client.get(f"/collections/events/items/{event_id}", headers=leader).json()
    ep = event["properties"]
    assert (ep["type"], ep["source"], ep["priority"], ep["status"], ep["township_code"]) == (
        "fire_hazard", "sensor", "urgent", "reported", "A")
    assert event["geometry"]["coordinates"] == pytest.approx([100.1, 33.1])
    assert f"alarm {aid}" in ep["description"] and "send the fire team" in ep["description"]
    steps = client.get(f"/events/{event_id}/timeline", headers=leader).json()["timeline"]
    assert [s["action"] for s in steps][:1] == ["report"] and steps[-1]["action"] == "from-alarm"
    assert steps[-1]["data"]["alarm_id"] == aid
    r = _act(client, leader, aid, "to-event")
    assert r.status_code == 409 and f"linked to event {event_id}" in r.json()["detail"]
    r = _act(client, leader, aid, "resolve", {"note": "put out"})
    assert r.status_code == 200 and r.json()["properties"]["status"] == "resolved"
    r = _act(client, people["operator"], aid, "resolve")
    assert r.status_code == 409 and "nothing" in r.json()["detail"]
    timeline = client.get(f"/alarms/{aid}/timeline", headers=leader).json()["timeline"]
    assert [(t["action"], t["to_status"]) for t in timeline] == [
        ("raise", "raised"), ("repeat", "raised"), ("ack", "acknowledged"), ("to-event", "acknowledged"),
        ("resolve", "resolved")]
    assert timeline[2]["actor"] == "leader-A" and timeline[2]["note"] == "on my way"
    # Resolved by hand while still hot: the next hot reading raises a new alarm.
    assert _hot(client, people, sites["T-A1"], 90)["id"] != aid


def test_another_townships_alarm_does_not_exist_and_a_worker_may_not_act(client, people, sites):
    alarm = _hot(client, people, sites["T-B1"])
    aid = alarm["id"]
    for action in ("ack", "resolve", "to-event"):
        assert _act(client, people["leader-A"], aid, action).status_code == 404
    assert client.get(f"/alarms/{aid}/timeline", headers=people["leader-A"]).status_code == 404
    mine = _hot(client, people, sites["T-A1"])
    r = _act(client, people["worker-A1"], mine["id"], "ack")
    assert r.status_code == 403, r.text
    assert client.post(f"/alarms/{mine['id']}/actions/ack", json={}).status_code in (401, 403, 404)
    assert _act(client, people["leader-B"], aid, "ack").status_code == 200


def test_bad_actions_and_bodies_are_refused_by_name(client, people, sites):
    aid = _hot(client, people, sites["T-A1"])["id"]
    op = people["operator"]
    assert _act(client, op, aid, "snooze").status_code == 404
    for bad in ("999999999", "abc", "0", str(2**70)):
        assert _act(client, op, bad, "ack").status_code == 404
        assert client.get(f"/alarms/{bad}/timeline", headers=op).status_code == 404
    for body, parameter in (([1], "body"), ({"mood": "calm"}, "mood"), ({"note": 5}, "note"),
                            ({"note": "x" * 5000}, "note"), ({"note": "a\x00b"}, "note")):
        r = _act(client, op, aid, "ack", body)
        assert r.status_code == 400 and r.json()["parameter"] == parameter, r.text
    for body, parameter in (({"type": "no_such_type"}, "type"), ({"priority": "whenever"}, "priority"),
                            ({"title": ""}, "title"), ({"assignee": "x"}, "assignee"),
                            ({"type": "fire\x00hazard"}, "type"), ({"title": "\ud800"}, "title")):
        r = _act(client, op, aid, "to-event", body)
        assert r.status_code == 400 and r.json()["parameter"] == parameter, r.text
    r = client.post(f"/alarms/{aid}/actions/ack", content=b"{not json", headers={**op, "Content-Type": "application/json"})
    assert r.status_code == 400
    after = client.get(f"/collections/alarms/items/{aid}", headers=op).json()["properties"]
    assert after["status"] == "raised" and after["event_id"] is None  # nothing half-written


def test_the_lifecycle_properties_are_not_patched_even_by_an_admin(client, people, sites):
    aid = _hot(client, people, sites["T-A1"])["id"]
    for prop, value in (("status", "resolved"), ("event_id", 1), ("count", 99), ("peak", 1.0)):
        r = client.patch(f"/collections/alarms/items/{aid}", json={"properties": {prop: value}},
                         headers=people["admin"])
        assert r.status_code == 409, (prop, r.text)
        assert f"/alarms/{aid}/actions/" in r.json()["detail"]


def test_alarm_statistics_count_within_scope(client, people, sites):
    _hot(client, people, sites["T-A1"])
    _hot(client, people, sites["T-B1"])
    everyone = client.get("/stats/alarms", params={"group_by": "township_code,status"}, headers=people["operator"])
    assert everyone.status_code == 200, everyone.text
    towns = {g["township_code"] for g in everyone.json()["groups"]}
    assert towns == {"A", "B"}
    mine = client.get("/stats/alarms", params={"group_by": "township_code,site_kind,level"},
                      headers=people["leader-A"]).json()
    assert {g["township_code"] for g in mine["groups"]} == {"A"} and mine["open_now"] >= 1
    assert all(g["site_kind"] == "temperature" for g in mine["groups"])
    day = client.get("/stats/alarms", params={"group_by": "day", "filter": "metric = 'temperature'"},
                     headers=people["leader-A"]).json()
    assert day["total"] == mine["total"]
    for params, parameter in (({"group_by": "colour"}, "group_by"), ({"group_by": "day,day"}, "group_by"),
                              ({"group_by": "day,metric,level,status"}, "group_by"), ({"colour": "x"}, "colour"),
                              ({"filter": "nope ="}, "filter")):
        r = client.get("/stats/alarms", params=params, headers=people["operator"])
        assert r.status_code == 400 and r.json()["parameter"] == parameter, (params, r.text)
