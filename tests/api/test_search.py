"""GET /search on both stores: places, things, events and people by name or code, only within the caller's
scope (a leader never finds another township's grids, buildings or events), bad input a 400 naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import STORE_KINDS, postgis_url, sample_dir

LEADER_TOWN = "632626100"
OTHER_TOWN = "632626200"


@pytest.fixture(scope="module", params=STORE_KINDS)
def client(request) -> Iterator[TestClient]:
    db = str(sample_dir() / "county.gpkg") if request.param == "embedded" else postgis_url()
    with TestClient(create_app(Settings(database=db, sample_dir=sample_dir(), jobs=False))) as c:
        yield c


def _headers(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": username, "password": "onemap"})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _search(client: TestClient, q: str, headers: dict | None = None, **params) -> list[dict]:
    r = client.get("/search", params={"q": q, **params}, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_a_township_is_found_by_its_chinese_name_and_by_its_code(client):
    name_zh = client.get("/collections/townships/items", params={"township_code": LEADER_TOWN}).json()[
        "features"][0]["properties"]["name_zh"]
    for q in (name_zh, LEADER_TOWN):
        hits = [h for h in _search(client, q) if h["layer"] == "townships"]
        assert hits[0]["label"] == name_zh and len(hits[0]["bbox"]) == 4


def test_the_operator_finds_temples_events_and_people(client):
    op = _headers(client, "operator")
    temple = client.get("/collections/temples/items", params={"limit": 1}, headers=op).json()["features"][0]
    hits = _search(client, temple["properties"]["name"], op)
    assert any(h["layer"] == "temples" and h["id"] == temple["id"] for h in hits)
    event = client.get("/collections/events/items", params={"limit": 1}, headers=op).json()["features"][0]
    [hit] = [h for h in _search(client, event["properties"]["event_code"], op) if h["layer"] == "events"]
    assert hit["id"] == event["id"] and hit["bbox"][0] == pytest.approx(event["geometry"]["coordinates"][0])
    grid = client.get("/collections/grids/items", params={"limit": 1}, headers=op).json()["features"][0]
    people = [h for h in _search(client, grid["properties"]["leader"], op) if h["kind"] == "person"]
    assert any(h["id"] == grid["id"] for h in people)


def test_anonymous_callers_find_only_public_layers(client):
    layers = {h["layer"] for h in _search(client, "社区")}
    assert layers and layers <= {"townships", "villages", "pois"}


def test_a_leader_never_finds_another_townships_grids_buildings_or_events(client):
    leader = _headers(client, f"leader-{LEADER_TOWN}")
    op = _headers(client, "operator")
    other_grid = client.get("/collections/grids/items", params={"township_code": OTHER_TOWN, "limit": 1},
                            headers=op).json()["features"][0]
    other_event = client.get("/collections/events/items", params={"township_code": OTHER_TOWN, "limit": 1},
                             headers=op).json()["features"][0]
    for q in (other_grid["properties"]["name"], other_grid["properties"]["grid_code"],
              other_grid["properties"]["leader"], other_event["properties"]["event_code"], OTHER_TOWN):
        for hit in _search(client, q, leader, limit=50):
            if hit["layer"] not in ("townships", "villages", "pois"):  # public layers
                feature = client.get(f"/collections/{hit['layer']}/items/{hit['id']}", headers=op).json()
                assert feature["properties"]["township_code"] == LEADER_TOWN, (q, hit)
    assert _search(client, other_event["properties"]["event_code"], op)  # the operator does find it


@pytest.mark.parametrize(("params", "parameter"), [
    ({}, "q"),
    ({"q": "  "}, "q"),
    ({"q": "%%"}, "q"),
    ({"q": "x" * 101}, "q"),
    ({"q": "寺", "limit": "many"}, "limit"),
    ({"q": "寺", "limit": "0"}, "limit"),
    ({"q": "寺", "limit": "51"}, "limit"),
    ({"q": "寺", "bbox": "1,2,3,4"}, "bbox"),
])
def test_bad_search_input_is_400_naming_the_parameter(client, params, parameter):
    r = client.get("/search", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] == parameter


def test_wildcards_typed_in_the_box_match_literally_nothing_more(client):
    assert _search(client, "赛来%") == _search(client, "赛来")
