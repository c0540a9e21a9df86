"""A grid worker sees only his own patrols, fixes and live position, wherever they are served (plain items,
one item, vector tiles, the live stream's scope), on both stores; a colleague of the same township is not
there at all (404, not 403), and his leader still sees both. Writes keep to the same rule."""

from __future__ import annotations

from datetime import timedelta

import mapbox_vector_tile
import morecantile
import pytest
from shapely.geometry import LineString, Point

from geoserver.access import Principal, Scope, scope_for
from geoserver.changes import INSERT, Change, as_seen_by
from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from tests.api import county
from tests.api.conftest import login

T0 = county.T0
# worker-A1 and worker-A2 patrol side by side in township A (grid A1); worker-B1 in township B.
WALKS = {"worker-A1": (100.10, 33.10), "worker-A2": (100.1004, 33.1004), "worker-B1": (100.60, 33.10)}
LAYERS = ("patrols", "track_points", "positions")


@pytest.fixture(scope="module")
def ids(client):
    """The features of each worker in each layer: {layer: {worker: [ids]}}."""
    store = client.app.state.store
    h = hash_password(county.PASSWORD)
    store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A1",)),
                     UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    for k, (worker, (lon, lat)) in enumerate(WALKS.items()):
        line = [(lon + i * 1e-4, lat) for i in range(5)]
        store.bulk_load("patrols", [Feature(None, LineString(line), {
            "worker": worker, "started_at": T0, "ended_at": T0 + timedelta(seconds=40), "status": "finished"})])
        pid = _ids(client, "patrols", worker)[0]
        store.bulk_load("track_points", [Feature(None, Point(x, y), {
            "patrol_id": pid, "worker": worker, "recorded_at": T0 + timedelta(seconds=10 * i), "point_key": f"{k}-{i}"})
            for i, (x, y) in enumerate(line)])
        store.bulk_load("positions", [Feature(None, Point(*line[-1]), {
            "worker": worker, "recorded_at": T0 + timedelta(seconds=40), "patrol_id": pid})])
    return {layer: {w: _ids(client, layer, w) for w in WALKS} for layer in LAYERS}


def _ids(client, layer: str, worker: str) -> list[int]:
    operator = login(client, "operator")
    r = client.get(f"/collections/{layer}/items", params={"worker": worker, "limit": 100}, headers=operator)
    assert r.status_code == 200, r.text
    return sorted(f["id"] for f in r.json()["features"])


def _workers(client, layer: str, headers) -> list[str]:
    r = client.get(f"/collections/{layer}/items", params={"limit": 1000}, headers=headers)
    assert r.status_code == 200, r.text
    return sorted({f["properties"]["worker"] for f in r.json()["features"]})


@pytest.mark.parametrize("layer", LAYERS)
def test_a_grid_worker_lists_only_his_own_and_his_leader_lists_the_township(client, ids, layer):
    assert _workers(client, layer, login(client, "worker-A1")) == ["worker-A1"]
    assert _workers(client, layer, login(client, "worker-A2")) == ["worker-A2"]
    assert _workers(client, layer, login(client, "leader-A")) == ["worker-A1", "worker-A2"]
    assert _workers(client, layer, login(client, "operator")) == sorted(WALKS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_colleagues_feature_does_not_exist_for_a_grid_worker(client, ids, layer):
    worker = login(client, "worker-A1")
    for fid in ids[layer]["worker-A2"]:
        r = client.get(f"/collections/{layer}/items/{fid}", headers=worker)
        assert r.status_code == 404, r.text
    own = ids[layer]["worker-A1"][0]
    assert client.get(f"/collections/{layer}/items/{own}", headers=worker).status_code == 200


@pytest.mark.parametrize("layer", LAYERS)
def test_the_vector_tiles_of_a_grid_worker_hold_only_his_own(client, ids, layer):
    lon, lat = WALKS["worker-A1"]
    t = morecantile.tms.get("WebMercatorQuad").tile(lon + 4e-4, lat + 2e-4, 17)  # points unclustered from z17
    path = f"/collections/{layer}/tiles/WebMercatorQuad/17/{t.y}/{t.x}"

    def workers(who: str) -> list[str]:
        r = client.get(path, headers=login(client, who))
        assert r.status_code in (200, 204), r.text
        tile = mapbox_vector_tile.decode(r.content) if r.content else {}
        return sorted({f["properties"]["worker"] for f in tile.get(layer, {}).get("features", [])})

    assert workers("worker-A1") == ["worker-A1"]
    assert workers("leader-A") == ["worker-A1", "worker-A2"]  # the same tile: not a cache hit across scopes


def test_a_grid_worker_cannot_write_a_colleagues_patrol(client, ids):
    worker = login(client, "worker-A1")
    theirs = ids["patrols"]["worker-A2"][0]
    r = client.patch(f"/collections/patrols/items/{theirs}", json={"properties": {"mode": "riding"}}, headers=worker)
    assert r.status_code == 404, r.text
    line = {"type": "LineString", "coordinates": [[100.2, 33.2], [100.201, 33.2]]}
    r = client.post("/collections/patrols/items", headers=worker, json={
        "type": "Feature", "geometry": line,
        "properties": {"worker": "worker-A2", "started_at": "2024-05-02T01:00:00Z"}})
    assert r.status_code == 403 and r.json()["parameter"] == "worker", r.text


def test_scope_and_live_changes_keep_to_the_owner(catalog):
    worker = Principal("worker-A1", "worker", townships=frozenset({"A"}), grids=frozenset({"A1"}))
    leader = Principal("leader-A", "leader", townships=frozenset({"A"}))
    for layer in LAYERS:
        assert scope_for(worker, catalog.get(layer), "read") == Scope(frozenset({"A"}), ("worker", "worker-A1"))
        assert scope_for(leader, catalog.get(layer), "read") == Scope.of(["A"])
    assert scope_for(worker, catalog.get("events"), "read") == Scope.of(["A"])  # events stay the township's
    mine = scope_for(worker, catalog.get("positions"), "read")
    assert mine.cache_key() != Scope.of(["A"]).cache_key()

    def change(who: str) -> Change:
        return Change(1, "positions", 7, INSERT, township_after="A", after=(100.1, 33.1, 100.1, 33.1),
                      properties={"worker": who})

    assert as_seen_by(change("worker-A1"), mine) == INSERT
    assert as_seen_by(change("worker-A2"), mine) is None
    assert as_seen_by(change("worker-A2"), scope_for(leader, catalog.get("positions"), "read")) == INSERT
