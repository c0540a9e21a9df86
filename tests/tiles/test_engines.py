"""Both tile engines, same answer: PostGIS (ST_AsMVT) and the embedded store (shapely + mapbox-vector-tile)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from geoserver.store import Store
from geoserver.store.postgis_mvt import tile_sql
from tests.conftest import STORE_KINDS, make_empty_store
from tests.tiles import county
from tests.tiles.mvt import decode, geometry, lonlat
from tiles.plan import CLUSTER_BELOW, TilePlan
from tiles.tms import CGCS2000, WEB_MERCATOR, get_tiling

TOWN_B = county.TOWN_CENTRES["B"]
LAYERS = ("townships", "grids", "buildings", "events", "temples")
SCOPES = {"all": Scope.everything(), "A": Scope.of(["A"]), "none": Scope.nothing()}


@pytest.fixture(scope="module")
def stores(catalog, tmp_path_factory, fresh_postgis_url) -> Iterator[dict[str, Store]]:
    """The tiny county with buildings, in both stores."""
    out = {}
    for kind in STORE_KINDS:
        store = make_empty_store(kind, catalog, tmp_path_factory.mktemp(kind), fresh_postgis_url)
        county.fill(store)
        out[kind] = store
    yield out
    for store in out.values():
        store.close()


def _addresses():
    for tms_id in (WEB_MERCATOR, CGCS2000):
        tiling = get_tiling(tms_id)
        for z in (6, 9, 11, 12, 13, 14, 16):
            for lon, lat in (TOWN_B, county.TOWN_CENTRES["A"], (100.5, 33.25)):
                t = tiling.tms.tile(lon, lat, z)
                yield tms_id, z, t.x, t.y


ADDRESSES = sorted(set(_addresses()))


def _tile(store: Store, catalog, layer_id: str, tms_id: str, z: int, x: int, y: int, scope: Scope) -> dict:
    request = TilePlan(catalog).request(catalog.get(layer_id), get_tiling(tms_id), z, x, y)
    return decode(store.tile(layer_id, request, scope)).get(layer_id, [])


def _same_geometry(a, b, units: float) -> bool:
    ga, gb = geometry(a), geometry(b)
    return ga.geom_type.removeprefix("Multi") == gb.geom_type.removeprefix("Multi") and \
        ga.hausdorff_distance(gb) <= units


@pytest.mark.parametrize("scope", ["all", "A"])
@pytest.mark.parametrize("layer_id", LAYERS)
def test_both_engines_build_the_same_tiles(stores, catalog, layer_id, scope):
    compared = 0
    for tms_id, z, x, y in ADDRESSES:
        pg = _tile(stores["postgis"], catalog, layer_id, tms_id, z, x, y, SCOPES[scope])
        em = _tile(stores["embedded"], catalog, layer_id, tms_id, z, x, y, SCOPES[scope])
        where = f"{layer_id} {tms_id}/{z}/{y}/{x}"
        assert len(pg) == len(em), where
        if not pg:
            continue
        compared += len(pg)
        if "point_count" in pg[0]["properties"]:  # clusters carry no ids: compare as sets
            assert sorted(f["properties"]["point_count"] for f in pg) == \
                sorted(f["properties"]["point_count"] for f in em), where
            key = sorted(tuple(f["geometry"]["coordinates"]) for f in pg)
            assert key == sorted(tuple(f["geometry"]["coordinates"]) for f in em), where
            continue
        by_id = {f["id"]: f for f in em}
        assert {f["id"] for f in pg} == set(by_id), where
        for f in pg:
            assert f["properties"] == by_id[f["id"]]["properties"], where
            assert _same_geometry(f, by_id[f["id"]], 3.0), where
    assert compared > 0


@pytest.mark.parametrize("kind", STORE_KINDS)
@pytest.mark.parametrize("tms_id", [WEB_MERCATOR, CGCS2000])
def test_decoded_points_land_where_the_store_has_them(stores, catalog, kind, tms_id):
    store = stores[kind]
    z = 16
    t = get_tiling(tms_id).tms.tile(TOWN_B[0], TOWN_B[1] + 0.01, z)
    feats = _tile(store, catalog, "events", tms_id, z, t.x, t.y, Scope.everything())
    assert feats
    w, s, e, n = get_tiling(tms_id).lonlat_bounds(z, t.x, t.y)
    one_unit = (e - w) / 4096
    for f in feats:
        lon, lat = lonlat(tms_id, z, t.x, t.y, *f["geometry"]["coordinates"])
        stored = store.get("events", f["id"], Scope.everything()).geometry
        assert lon == pytest.approx(stored.x, abs=one_unit) and lat == pytest.approx(stored.y, abs=one_unit)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_leaders_tile_holds_only_their_township(stores, catalog, kind):
    for tms_id, z, x, y in ADDRESSES:
        for layer_id in ("events", "buildings", "grids"):
            feats = _tile(stores[kind], catalog, layer_id, tms_id, z, x, y, Scope.of(["A"]))
            assert all(f["properties"].get("township_code", "A") == "A" for f in feats)
            assert not _tile(stores[kind], catalog, layer_id, tms_id, z, x, y, Scope.nothing())
    t = get_tiling(WEB_MERCATOR).tms.tile(*TOWN_B, 14)
    assert _tile(stores[kind], catalog, "buildings", WEB_MERCATOR, 14, t.x, t.y, Scope.everything())
    assert not _tile(stores[kind], catalog, "buildings", WEB_MERCATOR, 14, t.x, t.y, Scope.of(["A"]))


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_points_are_clustered_with_counts_at_low_zoom(stores, catalog, kind):
    z = CLUSTER_BELOW - 2
    tiling = get_tiling(WEB_MERCATOR)
    t = tiling.tms.tile(*TOWN_B, z)
    clusters = _tile(stores[kind], catalog, "events", WEB_MERCATOR, z, t.x, t.y, Scope.everything())
    w, s, e, n = tiling.lonlat_bounds(z, t.x, t.y)
    inside = [f for f in stores[kind].iter_features("events", Scope.everything())
              if w <= f.geometry.x < e and s < f.geometry.y <= n]
    assert sum(c["properties"]["point_count"] for c in clusters) == len(inside)
    assert len(clusters) < len(inside)  # the dense block became a few clusters
    assert all(set(c["properties"]) == {"point_count", "open_count", "overdue_count"} for c in clusters)
    # A cluster still tells open from closed: its open events, counted independently of the engine.
    open_inside = [f for f in inside if f.properties["status"] not in ("closed", "rejected", "merged")]
    assert sum(c["properties"]["open_count"] for c in clusters) == len(open_inside) > 0
    assert len(open_inside) < len(inside)
    assert sum(c["properties"]["overdue_count"] for c in clusters) == \
        sum(f.properties.get("due_state") == "overdue" for f in inside)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_properties_are_trimmed_to_the_zoom(stores, catalog, kind):
    tiling = get_tiling(WEB_MERCATOR)
    at = {}
    for z in (15, 16):
        t = tiling.tms.tile(TOWN_B[0], TOWN_B[1] + 0.01, z)
        at[z] = _tile(stores[kind], catalog, "events", WEB_MERCATOR, z, t.x, t.y, Scope.everything())
    assert at[15] and at[16]
    assert "deadline" in at[15][0]["properties"] and "reporter" not in at[15][0]["properties"]
    assert "description" not in at[16][0]["properties"]
    assert at[16][0]["properties"]["reported_at"].endswith("Z")


def test_buildings_only_from_their_min_zoom(catalog):
    plan = TilePlan(catalog)
    assert "buildings" not in [lyr.id for lyr in plan.layers_at(12)]
    assert "buildings" in [lyr.id for lyr in plan.layers_at(13)]
    assert plan.plan(catalog.get("buildings"), 15).tolerance < plan.plan(catalog.get("townships"), 8).tolerance


def test_the_stored_mercator_copy_gives_the_transformed_tiles_and_follows_a_move(stores, catalog):
    """PostGIS tiles of a layer keeping a Web Mercator copy read that column: the bytes are those of
    transforming every row, clusters included, and a moved point's copy moves with it."""
    store = stores["postgis"]
    plan, tiling = TilePlan(catalog), get_tiling(WEB_MERCATOR)
    compared = 0
    for layer_id in ("events", "temples"):
        layer = catalog.get(layer_id)
        assert layer.mercator_copy
        transforming = dataclasses.replace(layer, mercator_copy=False)
        for tms_id, z, x, y in ADDRESSES:
            if tms_id != WEB_MERCATOR:
                continue
            request = plan.request(layer, tiling, z, x, y)
            sql, params = tile_sql(layer, request, Scope.everything())
            assert "geom_3857" in sql and "ST_Transform(t.geom" not in sql
            with store._connection() as conn:
                copied = conn.execute(sql, params).fetchone()[0]
                transformed = conn.execute(*tile_sql(transforming, request, Scope.everything())).fetchone()[0]
            assert copied == transformed, f"{layer_id} {z}/{x}/{y}"
            compared += bool(copied)
    assert compared > 5
    event = next(iter(store.iter_features("events", Scope.everything())))
    moved = (event.geometry.x + 0.02, event.geometry.y - 0.015)
    store.update("events", event.id, Feature(event.id, Point(*moved), event.properties), Scope.everything())
    try:
        t = tiling.tms.tile(*moved, 16)
        feats = _tile(store, catalog, "events", WEB_MERCATOR, 16, t.x, t.y, Scope.everything())
        mine = [f for f in feats if f["id"] == event.id]
        assert mine, "the moved event is drawn where it now is"
        lon, lat = lonlat(WEB_MERCATOR, 16, t.x, t.y, *mine[0]["geometry"]["coordinates"])
        assert lon == pytest.approx(moved[0], abs=1e-4) and lat == pytest.approx(moved[1], abs=1e-4)
    finally:
        store.update("events", event.id, event, Scope.everything())


def test_tiles_built_on_the_event_loop_are_the_thread_pools_bytes(stores, catalog):
    """PostGIS builds an uncached tile on the event loop's own connections: same bytes as `tile`, scopes
    applied; another event loop (or a closed pool) is not offered the path."""
    store = stores["postgis"]
    plan = TilePlan(catalog)

    async def compare() -> int:
        assert not store.async_tiles()
        await store.open_async()
        try:
            assert store.async_tiles()
            drawn = 0
            for tms_id, z, x, y in ADDRESSES:
                for layer_id in ("events", "buildings"):
                    request = plan.request(catalog.get(layer_id), get_tiling(tms_id), z, x, y)
                    for scope in SCOPES.values():
                        on_loop = await store.tile_async(layer_id, request, scope)
                        assert on_loop == store.tile(layer_id, request, scope), (layer_id, tms_id, z, x, y)
                        drawn += bool(on_loop)
            # The pool keeps the store's session settings across uses (asyncpg's reset would undo them).
            assert await store._pool.fetch_value("SHOW jit", []) == "off"
            assert await store._pool.fetch_value("SHOW TimeZone", []) == "UTC"
            return drawn
        finally:
            await store.close_async()
            assert not store.async_tiles()

    assert asyncio.run(compare()) > 10
    assert not stores["embedded"].async_tiles()
