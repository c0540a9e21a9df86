"""Cached tiles answered before routing (api/tile_hits.py): the same answer as the route, never another's tile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import tile_hits
from api.app import create_app
from api.settings import Settings
from tests.api.conftest import SECRET, login
from tests.conftest import filled_database
from tests.tiles import county
from tests.tiles.mvt import decode
from tiles.tms import get_tiling

TOWN_B = county.TOWN_CENTRES["B"]


@pytest.fixture
def client(catalog, tmp_path) -> Iterator[TestClient]:
    db = filled_database("embedded", catalog, tmp_path, None, county.fill)
    with TestClient(create_app(Settings(database=db, secret=SECRET, tile_cache_mb=16))) as c:
        yield c


@pytest.fixture
def served(monkeypatch) -> list[str]:
    """The paths the fast path answered itself (it falls through to the app for everything else)."""
    answered: list[str] = []
    original = tile_hits.TileHits._answer

    def spy(self, scope, match):
        answer = original(self, scope, match)
        if isinstance(answer, tuple):  # a hit (a TileJob is a miss it builds itself: see `built`)
            answered.append(scope["path"])
        return answer

    monkeypatch.setattr(tile_hits.TileHits, "_answer", spy)
    return answered


@pytest.fixture
def built(monkeypatch) -> list[str]:
    """The paths of the misses the fast path built itself."""
    paths: list[str] = []
    original = tile_hits.TileHits._answer

    def spy(self, scope, match):
        answer = original(self, scope, match)
        if answer and not isinstance(answer, tuple):
            paths.append(scope["path"])
        return answer

    monkeypatch.setattr(tile_hits.TileHits, "_answer", spy)
    return paths


def _path(lon: float, lat: float, z: int, collection: str | None = None) -> str:
    t = get_tiling("WebMercatorQuad").tms.tile(lon, lat, z)
    prefix = f"/collections/{collection}/tiles" if collection else "/tiles"
    return f"{prefix}/WebMercatorQuad/{z}/{t.y}/{t.x}"


def test_a_cached_tile_is_answered_before_routing_exactly_as_the_route_answers(client, served):
    admin = login(client, "admin")
    path = _path(*TOWN_B, 15, "buildings")
    first = client.get(path, headers=admin)
    assert served == []  # a miss: built by the route
    again = client.get(path, headers=admin)
    assert served == [path]
    assert again.status_code == first.status_code == 200 and again.content == first.content
    for header in ("etag", "cache-control", "vary", "content-type", "content-length"):
        assert again.headers[header] == first.headers[header], header
    not_modified = client.get(path, headers={**admin, "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b"" and len(served) == 2
    head = client.head(path, headers=admin)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == first.headers["etag"]


def test_another_callers_cached_tile_is_never_handed_out(client, served):
    path = _path(*TOWN_B, 14)
    admin, leader = login(client, "admin"), login(client, "leader-A")
    everything = client.get(path, headers=admin).content
    client.get(path, headers=leader)
    mine = client.get(path, headers=leader)
    assert served == [path]  # the leader's second request: from his own cache entry
    assert mine.content != everything
    assert "buildings" not in decode(mine.content)  # all of town B's houses are B's
    anonymous = client.get(path)
    assert anonymous.content != everything and "buildings" not in decode(anonymous.content)


def test_a_disabled_account_gets_no_cached_tile(client, served):
    admin, leader = login(client, "admin"), login(client, "leader-A")
    path = _path(*county.TOWN_CENTRES["A"], 15, "buildings")
    client.get(path, headers=leader)
    assert client.get(path, headers=leader).status_code == 200 and served == [path]
    assert client.patch("/users/leader-A", json={"disabled": True}, headers=admin).status_code == 200
    refused = client.get(path, headers=leader)
    assert refused.status_code == 401 and len(served) == 1  # the app answered, with its problem document


def test_what_the_fast_path_cannot_judge_goes_to_the_app(client, served):
    admin = login(client, "admin")
    path = _path(*TOWN_B, 15, "buildings")
    client.get(path, headers=admin)
    assert client.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert client.get(path, headers={"X-API-Key": "nope"}).status_code == 401
    assert client.get(f"{path}?f=mvt", headers=admin).status_code in (200, 400)
    assert client.get(_path(*TOWN_B, 15, "events")).status_code == 404  # not public: anonymous gets nothing
    assert client.get("/tiles/NoSuchTMS/15/1/1", headers=admin).status_code == 404
    assert served == []


def test_a_miss_of_a_known_caller_is_built_before_routing_exactly_as_the_route_builds_it(catalog, tmp_path, built):
    db = filled_database("embedded", catalog, tmp_path, None, county.fill)
    paths = [_path(*TOWN_B, 15, "buildings"), _path(*TOWN_B, 13), _path(*county.TOWN_CENTRES["A"], 16, "events")]
    answers = {}
    for cache_mb in (0, 16):  # memory cache off (every tile a miss), then on
        with TestClient(create_app(Settings(database=db, secret=SECRET, tile_cache_mb=cache_mb))) as c:
            leader = login(c, "leader-A")
            c.get("/tiles/WebMercatorQuad", headers=leader)  # the app verifies the token once
            for path in paths:
                got = c.get(path, headers=leader)
                answers.setdefault(path, []).append(got)
                assert got.status_code in (200, 204)
            assert built == paths
            built.clear()
            refused = c.get(paths[0], headers={"Authorization": "Bearer not-a-token"})
            assert refused.status_code == 401 and built == []
    # the route's own answer, through the app (a query string is the app's to judge), is the same tile
    with TestClient(create_app(Settings(database=db, secret=SECRET, tile_cache_mb=0))) as c:
        leader = login(c, "leader-A")
        for path in paths:
            routed = c.get(path + "?f=mvt", headers=leader)
            for got in answers[path]:
                assert got.status_code == routed.status_code and got.content == routed.content
                for header in ("etag", "cache-control", "vary", "content-type"):
                    assert got.headers.get(header) == routed.headers.get(header), header
    assert "buildings" not in decode(answers[paths[1]][0].content)  # leader A reads none of town B's houses
