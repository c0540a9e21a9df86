"""The sample county generator: deterministic, complete, valid, in place, and written where the server reads."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pytest
import rasterio
import shapely

from geoserver.access import Scope
from geoserver.features import FeatureQuery, check_feature
from geoserver.passwords import verify_password
from geoserver.store import open_store
from layers.events import EVENT_STATUSES, EVENT_TYPES
from layers.sites import SITE_KINDS
from sample_data.county import TOWN_CODE, build_county
from sample_data.generate import generate, is_generated
from sample_data.sample import LAYER_IDS, SampleCounty
from sample_data.scales import SAMPLE_NOW, get_scale
from sample_data.spatial import county_outline

# What the small scale must hold (a user of the test county would notice anything outside these).
SMALL_RANGES = {"townships": (9, 9), "villages": (25, 60), "grids": (150, 260), "buildings": (1200, 1800),
                "temples": (6, 6), "monitoring_sites": (28, 40), "pois": (100, 200), "events": (1000, 1000),
                "patrols": (10, 40), "track_points": (2000, 12000), "readings": (1500, 4000),
                "alarms": (1, 60)}


@pytest.fixture(scope="module")
def small() -> dict[str, list]:
    """Every layer of the small sample, materialised."""
    sample = SampleCounty("small", 2026)
    return {layer_id: list(sample.iter_layer(layer_id)) for layer_id in LAYER_IDS}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The small sample generated into a directory, and its manifest."""
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, scale="small", seed=2026)


def _fingerprint(features) -> list[tuple]:
    return [(f.id, shapely.to_wkb(f.geometry), json.dumps(f.properties, sort_keys=True, default=str))
            for f in features]


def test_the_same_seed_gives_the_same_features_and_another_seed_does_not(small):
    again = SampleCounty("small", 2026)
    for layer_id in LAYER_IDS:
        assert _fingerprint(again.iter_layer(layer_id)) == _fingerprint(small[layer_id]), layer_id
    other = SampleCounty("small", 7)
    assert _fingerprint(other.iter_layer("buildings")) != _fingerprint(small["buildings"])


def test_every_layer_is_filled_within_its_expected_range_with_ids_1_to_n(small):
    for layer_id, (lo, hi) in SMALL_RANGES.items():
        features = small[layer_id]
        assert lo <= len(features) <= hi, (layer_id, len(features))
        assert [f.id for f in features] == list(range(1, len(features) + 1)), layer_id


def test_every_feature_is_valid_for_its_layer(small, catalog):
    for layer_id, features in small.items():
        layer = catalog.get(layer_id)
        for f in features:
            checked = check_feature(layer, f)
            assert set(f.properties) == set(layer.property_names), (layer_id, f.id)
            assert checked.properties == f.properties, (layer_id, f.id)


def test_the_enums_are_all_used(small):
    assert Counter(f.properties["kind"] for f in small["townships"]) == {"town": 1, "township": 8}
    assert {f.properties["kind"] for f in small["monitoring_sites"]} == set(SITE_KINDS)
    assert {f.properties["category"] for f in small["pois"]} == {"party_org", "enterprise", "scenic_spot",
                                                                  "service_hall"}
    assert {f.properties["grid_kind"] for f in small["grids"]} == {"basic", "party", "special"}
    events = small["events"]
    assert {f.properties["type"] for f in events} == set(EVENT_TYPES)
    assert {f.properties["status"] for f in events} >= set(EVENT_STATUSES) - {"reported"}


def _key_of(features, key):
    tree = shapely.STRtree([f.geometry for f in features])
    codes = [f.properties[key] for f in features]
    return tree, codes


def _anchor(feature):
    g = feature.geometry
    if g.geom_type == "LineString":
        return shapely.Point(g.coords[0])
    return g.centroid if g.geom_type != "Point" else g


def test_features_lie_in_the_county_and_carry_the_township_and_grid_they_fall_in(small, catalog):
    outline = county_outline().buffer(1e-9)
    towns, town_codes = _key_of(small["townships"], "township_code")
    grids, grid_codes = _key_of(small["grids"], "grid_code")
    for layer_id, features in small.items():
        assert all(outline.covers(f.geometry) for f in features), layer_id
        if layer_id in ("townships", "villages", "grids"):
            continue
        layer = catalog.get(layer_id)
        for f in features:
            p = _anchor(f)
            (t,) = towns.query(p, predicate="intersects")[:1]
            assert f.properties["township_code"] == town_codes[t], (layer_id, f.id)
            if layer.has_grid:
                (g,) = grids.query(p, predicate="intersects")[:1]
                assert f.properties["grid_code"] == grid_codes[g], (layer_id, f.id)


def test_grids_and_villages_nest_in_their_township_and_cover_it():
    county = build_county(get_scale("default"), 2026)
    town_grids = [g for g in county.grids if g.township_code == TOWN_CODE]
    assert len(town_grids) >= 98
    for t in county.townships:
        mine = [g.geometry for g in county.grids if g.township_code == t.code]
        assert 8 <= len(mine) or t.code == TOWN_CODE
        union = shapely.union_all(mine)
        assert union.symmetric_difference(t.geometry).area < 1e-6 * t.geometry.area, t.code
        for g in county.grids:
            if g.township_code == t.code:
                assert g.code.startswith(g.village_code) and g.village_code.startswith(t.code)
    codes = [g.code for g in county.grids]
    assert len(set(codes)) == len(codes)


def test_buildings_do_not_overlap_and_have_plausible_sizes(small):
    polygons = np.array([f.geometry for f in small["buildings"]])
    pairs = shapely.STRtree(polygons).query(polygons, predicate="overlaps")
    assert pairs.shape[1] == 0
    for f in small["buildings"]:
        p = f.properties
        assert 1 <= p["floors"] <= 6
        assert 3.0 * p["floors"] - 0.05 <= p["height"] <= 3.4 * p["floors"] + 0.05
    uses = Counter(f.properties["use"] for f in small["buildings"])
    assert uses.most_common(1)[0][0] == "residential" and uses["religious"] > 0


def test_track_points_follow_their_patrol_every_10_to_30_seconds(small):
    by_patrol = defaultdict(list)
    for f in small["track_points"]:
        by_patrol[f.properties["patrol_id"]].append(f)
    patrols = {f.id: f for f in small["patrols"]}
    assert set(by_patrol) == set(patrols)
    for pid, points in by_patrol.items():
        patrol = patrols[pid].properties
        times = [p.properties["recorded_at"] for p in points]
        gaps = np.diff([t.timestamp() for t in times])
        assert ((gaps >= 10) & (gaps <= 30)).all(), pid
        assert patrol["point_count"] == len(points)
        assert patrol["started_at"] == times[0]
        assert all(p.properties["worker"] == patrol["worker"] for p in points)
        assert list(patrols[pid].geometry.coords) == [(p.geometry.x, p.geometry.y) for p in points]
        if patrol["status"] == "finished":
            assert patrol["ended_at"] == times[-1]
        else:
            assert patrol["ended_at"] is None and times[-1] <= SAMPLE_NOW
        assert patrol["worker"] == f"worker-{patrol['grid_code']}"


def test_activity_is_dated_before_the_samples_now_and_links_resolve(small):
    assert max(f.properties["reported_at"] for f in small["events"]) <= SAMPLE_NOW
    for f in small["events"]:
        p = f.properties
        assert (p["closed_at"] is not None) == (p["status"] == "closed")
        assert p["closed_at"] is None or p["reported_at"] <= p["closed_at"] <= SAMPLE_NOW
        assert p["deadline"] > p["reported_at"]
    event_ids = {f.id for f in small["events"]}
    site_ids = {f.id for f in small["monitoring_sites"]}
    for f in small["alarms"]:
        assert f.properties["event_id"] is None or f.properties["event_id"] in event_ids
        assert f.properties["site_id"] is None or f.properties["site_id"] in site_ids
        assert f.properties["raised_at"] <= SAMPLE_NOW
    assert {f.properties["site_id"] for f in small["readings"]} <= site_ids


def test_generate_writes_a_geopackage_the_store_reads_back(generated, catalog):
    out, manifest = generated
    assert manifest["layers"] == {k: manifest["layers"][k] for k in LAYER_IDS}
    with open_store(str(out / "county.gpkg"), catalog) as store:
        for layer_id in LAYER_IDS:
            assert store.extent(layer_id, Scope.everything()).count == manifest["layers"][layer_id], layer_id
        admin = store.get_user("admin")
        assert admin is not None and verify_password("onemap", admin.password_hash)
        worker = store.get_user(f"worker-{next(iter(SampleCounty('small', 2026).workers)).code}")
        assert worker is not None and worker.role == "worker" and len(worker.grids) == 1
        team = store.rows("grid_bindings", {"grid_code": worker.grids[0]})
        assert [(r["username"], r["role"]) for r in team] == [(worker.username, "full_time")]
        leader = store.get_user(f"leader-{TOWN_CODE}")
        assert leader is not None and leader.townships == (TOWN_CODE,)
        assert store.get_user("dept-religion").department == "religion"


def test_the_manifest_is_what_marks_a_finished_sample(generated, tmp_path):
    out, manifest = generated
    assert is_generated(out, "small", 2026)
    assert not is_generated(out, "small", 2027)
    assert not is_generated(out, "default", 2026)
    assert not is_generated(tmp_path, "small", 2026)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2026


def test_the_rasters_are_cloud_optimized_and_empty_outside_the_county(generated):
    out, _ = generated
    town = (100.74, 32.93)
    for name in ("dem.tif", "imagery.tif"):
        with rasterio.open(out / name) as ds:
            assert ds.crs.to_epsg() == 4326
            assert ds.profile["tiled"] and ds.block_shapes[0] == (512, 512)
            assert ds.overviews(1), name
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert ds.compression.name.lower() == "deflate"
            minx, miny, maxx, maxy = county_outline().bounds
            corner = ds.index(minx + 0.01, miny + 0.01)  # south-west corner: outside the outline
            row, col = ds.index(*town)
            masks = ds.read_masks(1)
            assert masks[corner] == 0 and masks[row, col] == 255, name
    with rasterio.open(out / "dem.tif") as ds:
        z = ds.read(1, masked=True)
        valid = z.compressed()
        assert 3500 <= valid.min() and valid.max() <= 4800
        row, col = ds.index(*town)
        # The county seat lies on a valley floor: lower than most of the county.
        assert z[row, col] < np.percentile(valid, 10)
    with rasterio.open(out / "imagery.tif") as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint8"


@pytest.fixture(scope="module")
def own_postgis():
    """A PostGIS database of this module's own (the sample is loaded into it), dropped afterwards."""
    import uuid

    import psycopg

    from tests.conftest import _server_url, postgis_url

    name = f"onemap_sample_{uuid.uuid4().hex[:10]}"
    admin = _server_url(postgis_url(), "postgres")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostGIS is not reachable at {admin} ({exc}); run `make test`, which provisions it")
    url = _server_url(postgis_url(), name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_loading_into_postgis_gives_the_same_features_and_ids_as_the_geopackage(generated, own_postgis, catalog):
    out, _ = generated
    generate(out, scale="small", seed=2026, load=own_postgis)
    manifest = generate(out, scale="small", seed=2026, load=own_postgis)  # again into the same database: as make does
    assert is_generated(out, "small", 2026, load=own_postgis)
    with open_store(str(out / "county.gpkg"), catalog) as gpkg, open_store(own_postgis, catalog) as pg:
        for layer_id in LAYER_IDS:
            query = FeatureQuery(limit=500, sortby=(("township_code", True),))
            a, b = (s.query(layer_id, query, Scope.everything()) for s in (gpkg, pg))
            assert a.number_matched == b.number_matched == manifest["layers"][layer_id], layer_id
            assert [f.id for f in a.features] == [f.id for f in b.features], layer_id
            assert [f.properties for f in a.features] == [f.properties for f in b.features], layer_id
        assert verify_password("onemap", pg.get_user("operator").password_hash)
        teams = [sorted((r["grid_code"], r["username"], r["role"]) for r in s.rows("grid_bindings")) for s in (gpkg, pg)]
        workers = [u for u in SampleCounty("small", 2026).users() if u.role == "worker"]
        assert teams[0] == teams[1] and len(teams[0]) == len(workers) > 0
