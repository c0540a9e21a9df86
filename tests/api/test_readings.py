"""Readings in over HTTP on both stores: good readings stored at their site, every bad one refused with its
reason and counted, another township's sites unknown, bounded batches."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from tests.api.conftest import login


@pytest.fixture(scope="module")
def sites(client):
    """A smoke sensor and a water station in township A, a smoke sensor in B."""
    store = client.app.state.store
    made = store.insert("monitoring_sites", [
        Feature(None, Point(100.1, 33.1), {"site_code": "S-A1", "kind": "smoke", "status": "online"}),
        Feature(None, Point(100.4, 33.2), {"site_code": "W-A1", "kind": "water_quality", "status": "online"}),
        Feature(None, Point(100.8, 33.2), {"site_code": "S-B1", "kind": "smoke", "status": "online"})],
        Scope.everything())
    return {f.properties["site_code"]: f for f in made}


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the admin, the operator and township A's leader."""
    return {name: login(client, name) for name in ("admin", "operator", "leader-A", "worker-A1")}


def _at(minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _post(client, headers, readings):
    # NaN and Infinity go out as JavaScript-style literals, as a sloppy device would send them.
    return client.post("/readings", content=json.dumps({"readings": readings}, allow_nan=True),
                       headers={**headers, "Content-Type": "application/json"})


def test_good_readings_are_stored_at_their_site_with_its_township_and_grid(client, people, sites):
    smoke, water = sites["S-A1"], sites["W-A1"]
    r = _post(client, people["operator"], [
        {"site_id": smoke.id, "metric": "smoke_density", "value": 0.02, "unit": "%obs/m", "observed_at": _at()},
        {"site_id": water.id, "metric": "ph", "value": 7, "unit": "pH", "observed_at": _at(-1)}])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"] == 0
    for line in body["results"]:
        stored = client.get(f"/collections/readings/items/{line['id']}", headers=people["admin"]).json()
        assert stored["properties"]["township_code"] == "A"
    first = client.get(f"/collections/readings/items/{body['results'][0]['id']}", headers=people["admin"]).json()
    assert first["geometry"]["coordinates"] == pytest.approx([100.1, 33.1])
    assert first["properties"]["grid_code"] == "A1" and first["properties"]["kind"] == "smoke"
    assert first["properties"]["value"] == pytest.approx(0.02)


BAD = [
    ({"site_id": 999_999_999, "metric": "smoke_density", "value": 1, "unit": "%obs/m"}, "site_id", "unknown site"),
    ({"site_id": "S-A1", "metric": "smoke_density", "value": 1}, "site_id", "site_id must be"),
    ({"site_id": 2**70, "metric": "smoke_density", "value": 1}, "site_id", "unknown site"),
    ({"metric": "ph", "value": 7, "unit": "pH"}, "metric", "unknown metric 'ph' for a smoke site"),
    ({"metric": "smoke_density", "value": 1, "unit": "°C"}, "unit", "wrong unit"),
    ({"metric": "smoke_density", "value": "high", "unit": "%obs/m"}, "value", "value must be a number"),
    ({"metric": "smoke_density", "value": True, "unit": "%obs/m"}, "value", "value must be a number"),
    ({"metric": "smoke_density", "value": 10**400, "unit": "%obs/m"}, "value", "out of range"),
    ({"metric": "smoke_density", "value": 1e300, "unit": "%obs/m"}, "value", "out of range"),
    ({"metric": "smoke_density", "value": float("inf"), "unit": "%obs/m"}, "value", "finite"),
    ({"metric": "smoke_density", "value": float("nan"), "unit": "%obs/m"}, "value", "finite"),
    ({"metric": "smoke_density", "value": 1, "unit": "%obs/m", "observed_at": "9999-12-31T23:59:59Z"},
     "observed_at", "in the future"),
    ({"metric": "smoke_density", "value": 1, "unit": "%obs/m", "observed_at": "1970-01-01T00:00:00Z"},
     "observed_at", "older than"),
    ({"metric": "smoke_density", "value": 1, "unit": "%obs/m", "observed_at": "2024-13-45T99:00:00Z"},
     "observed_at", "RFC 3339"),
    ({"metric": "smoke_density", "value": 1, "unit": "%obs/m", "observed_at": "2024-05-01T10:00:00"},
     "observed_at", "time zone"),
    ({"metric": "smoke_density", "value": 1, "unit": "%obs/m", "battery": 3}, "battery", "unknown field"),
    ({"metric": "smoke\x00density", "value": 1, "unit": "%obs/m"}, "metric", "unknown metric"),
    ({"metric": "smoke_density", "value": 1, "unit": "%obs/m", "x\x00" * 5000: 1}, "x" * 64, "unknown field"),
    ({"metric": "m" * 100_000, "value": 1}, "metric", "unknown metric"),
]


@pytest.mark.parametrize(("reading", "field", "reason"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_a_bad_reading_is_refused_with_its_reason_and_counted_while_its_batch_mates_are_stored(
        client, people, sites, reading, field, reason):
    smoke = sites["S-A1"]
    bad = {"site_id": smoke.id, "observed_at": _at(), **reading}
    good = {"site_id": smoke.id, "metric": "smoke_density", "value": 0.01, "unit": "%obs/m", "observed_at": _at()}
    before = client.get("/readings/rejected", headers=people["admin"]).json()
    r = _post(client, people["operator"], [good, bad])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    line = body["results"][1]
    assert line["status"] == "rejected" and line["field"] == field and reason in line["reason"], line
    after = client.get("/readings/rejected", headers=people["admin"]).json()
    assert after["count"] == before["count"] + 1
    counted = field if field in ("site_id", "metric", "value", "unit", "observed_at") else "other"
    assert after["by_field"].get(counted, 0) == before["by_field"].get(counted, 0) + 1
    assert after["latest"][0]["reason"] == line["reason"] and after["latest"][0]["source"] == "http"


def test_a_leader_sending_for_another_townships_site_hears_of_an_unknown_site(client, people, sites):
    r = _post(client, people["leader-A"], [
        {"site_id": sites["S-B1"].id, "metric": "smoke_density", "value": 0.01, "unit": "%obs/m",
         "observed_at": _at()},
        {"site_id": sites["S-A1"].id, "metric": "smoke_density", "value": 0.01, "unit": "%obs/m",
         "observed_at": _at()}])
    assert r.status_code == 200, r.text
    lines = r.json()["results"]
    assert lines[0] == {"index": 0, "status": "rejected", "reason": f"unknown site {sites['S-B1'].id}",
                        "field": "site_id"}
    assert lines[1]["status"] == "accepted"
    # A grid worker reports events, not sensor readings: refused as a whole, nothing stored.
    r = _post(client, people["worker-A1"], [
        {"site_id": sites["S-A1"].id, "metric": "smoke_density", "value": 0.01, "unit": "%obs/m",
         "observed_at": _at()}])
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_only_those_who_may_send_for_the_whole_county_see_the_refused_readings(client, people):
    assert client.get("/readings/rejected", headers=people["leader-A"]).status_code == 403
    assert client.get("/readings/rejected").status_code in (401, 403)
    assert client.get("/readings/rejected", params={"limit": "x"}, headers=people["admin"]).status_code == 400
    assert client.get("/readings/rejected", params={"limit": "5000"}, headers=people["admin"]).status_code == 400


@pytest.mark.parametrize(("body", "parameter"), [
    ([1, 2], "body"),
    ({"readings": []}, "readings"),
    ({"readings": "many"}, "readings"),
    ({"readings": [{}], "extra": 1}, "extra"),
])
def test_a_malformed_body_is_a_400_naming_the_field_and_writes_nothing(client, people, body, parameter):
    before = client.get("/readings/rejected", headers=people["admin"]).json()["count"]
    r = client.post("/readings", json=body, headers=people["operator"])
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter
    assert client.get("/readings/rejected", headers=people["admin"]).json()["count"] == before


def test_batches_are_bounded_in_count_and_in_bytes(client, people, sites):
    one = {"site_id": sites["S-A1"].id, "metric": "smoke_density", "value": 0.01, "unit": "%obs/m",
           "observed_at": _at()}
    r = _post(client, people["operator"], [5, one])
    assert r.status_code == 200 and r.json()["results"][0]["reason"] == "a reading must be a JSON object"
    r = _post(client, people["operator"], [one] * 1001)
    assert r.status_code == 400 and r.json()["parameter"] == "readings"
    r = client.post("/readings", content=b'{"readings": ["' + b"x" * 2_000_000 + b'"]}',
                    headers={**people["operator"], "Content-Type": "application/json"})
    assert r.status_code in (400, 413) and r.headers["content-type"].startswith("application/problem+json")
    r = client.post("/readings", content=b'{"readings": [', headers={**people["operator"],
                                                                      "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["parameter"] == "body"


def test_a_full_batch_is_stored_in_one_go(client, people, sites):
    smoke = sites["S-A1"]
    batch = [{"site_id": smoke.id, "metric": "smoke_density", "value": i / 10000, "unit": "%obs/m",
              "observed_at": _at(-i / 60)} for i in range(1000)]
    r = _post(client, people["operator"], batch)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1000
    ids = [line["id"] for line in r.json()["results"]]
    assert len(set(ids)) == 1000


def test_a_batch_sent_again_is_reported_as_duplicates_of_what_is_stored_and_stored_once(client, people, sites):
    smoke = sites["S-A1"]
    at = _at(-7)
    batch = [{"site_id": smoke.id, "metric": "smoke_density", "value": 0.05, "unit": "%obs/m", "observed_at": at},
             {"site_id": smoke.id, "metric": "smoke_density", "value": 0.06, "unit": "%obs/m", "observed_at": _at(-8)}]
    first = _post(client, people["operator"], batch)
    assert first.status_code == 200 and first.json()["accepted"] == 2, first.text
    ids = [line["id"] for line in first.json()["results"]]
    # The answer was lost; the device sends the batch again, with the first reading twice.
    again = _post(client, people["operator"], batch + [batch[0]])
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 3, 0)
    assert [(line["status"], line["id"]) for line in body["results"]] == [
        ("duplicate", ids[0]), ("duplicate", ids[1]), ("duplicate", ids[0])]
    stored = client.get("/collections/readings/items", headers=people["admin"],
                        params={"filter": f"site_id = {smoke.id} AND observed_at = TIMESTAMP('{at}')"}).json()
    assert stored["numberMatched"] == 1
    # Twice within one new batch: stored once, the second line names the first one's id.
    fresh = {**batch[0], "observed_at": _at(-9)}
    r = _post(client, people["operator"], [fresh, fresh])
    lines = r.json()["results"]
    assert [line["status"] for line in lines] == ["accepted", "duplicate"] and lines[0]["id"] == lines[1]["id"]


def test_a_flood_of_batches_is_answered_429_with_retry_after_and_nothing_of_it_is_written(
        client, people, sites, monkeypatch):
    from api.routers.readings import IngestGate
    from layers import ingest

    inside, release = threading.Event(), threading.Event()
    real = ingest.ingest

    def slow(*args, **kwargs):
        inside.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "ingest", slow)
    monkeypatch.setattr(client.app.state, "ingest_gate", IngestGate(running=1, waiting=0), raising=False)
    smoke = sites["S-A1"]
    reading = {"site_id": smoke.id, "metric": "smoke_density", "value": 0.07, "unit": "%obs/m"}
    answers = {}
    held = threading.Thread(target=lambda: answers.update(
        first=_post(client, people["operator"], [{**reading, "observed_at": _at(-11)}])))
    held.start()
    try:
        assert inside.wait(30)
        before = client.get("/readings/rejected", headers=people["admin"]).json()["count"]
        r = _post(client, people["operator"], [{**reading, "observed_at": _at(-12)}, {"site_id": "bad"}])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["parameter"] == "readings"
        assert client.get("/readings/rejected", headers=people["admin"]).json()["count"] == before
    finally:
        release.set()
        held.join(30)
    assert answers["first"].status_code == 200 and answers["first"].json()["accepted"] == 1
    # Sent again once the line is free, it is taken.
    r = _post(client, people["operator"], [{**reading, "observed_at": _at(-12)}])
    assert r.status_code == 200 and r.json()["accepted"] == 1
