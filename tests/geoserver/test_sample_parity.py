"""Both stores give identical answers on the sample county: counts, extents, pages, filters, scopes."""

from datetime import UTC, datetime

import pytest
import shapely

from geoserver.access import Scope
from geoserver.features import FeatureQuery

TOWN_CENTRE = (100.70, 32.90, 100.78, 32.96)


def same_page(a, b):
    assert a.number_matched == b.number_matched
    assert [f.id for f in a.features] == [f.id for f in b.features]
    for fa, fb in zip(a.features, b.features, strict=True):
        assert fa.properties == fb.properties, fa.id
        assert shapely.equals_exact(fa.geometry, fb.geometry, tolerance=1e-9), fa.id


@pytest.fixture(scope="module")
def pair(sample_stores):
    return sample_stores["embedded"], sample_stores["postgis"]


@pytest.fixture(scope="module")
def township_codes(pair):
    page = pair[0].query("townships", FeatureQuery(limit=100), Scope.everything())
    return [f.properties["township_code"] for f in page.features]


def test_the_sample_county_has_nine_townships_and_every_layer_filled(pair, catalog, township_codes):
    assert len(township_codes) == 9
    for layer in catalog:
        counts = [s.extent(layer.id, Scope.everything()).count for s in pair]
        assert counts[0] == counts[1] > 0, layer.id


def test_extents_agree(pair, catalog):
    for layer in catalog:
        a, b = (s.extent(layer.id, Scope.everything()) for s in pair)
        assert a.bbox == pytest.approx(b.bbox, abs=1e-9), layer.id
        assert a.interval == b.interval, layer.id


@pytest.mark.parametrize("layer_id", ["townships", "grids", "buildings", "temples", "monitoring_sites", "pois",
                                      "events", "patrols", "track_points", "readings", "alarms", "villages"])
def test_first_pages_agree_feature_by_feature(pair, layer_id):
    q = FeatureQuery(limit=200)
    same_page(*(s.query(layer_id, q, Scope.everything()) for s in pair))


def test_bbox_datetime_filter_sort_and_paging_agree(pair):
    q = FeatureQuery(
        bbox=TOWN_CENTRE,
        datetime=(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)),
        filter={"op": "and", "args": [
            {"op": "in", "args": [{"property": "type"}, ["garbage", "road_damage", "dispute"]]},
            {"op": "<>", "args": [{"property": "status"}, "closed"]}]},
        sortby=(("priority", False), ("reported_at", True)),
        limit=50, offset=10,
    )
    a, b = (s.query("events", q, Scope.everything()) for s in pair)
    same_page(a, b)
    assert a.number_matched > 0


def test_a_township_scope_gives_the_same_subset_in_both(pair, township_codes):
    scope = Scope.of(township_codes[:1])
    a, b = (s.query("buildings", FeatureQuery(limit=500), scope) for s in pair)
    same_page(a, b)
    assert {f.properties["township_code"] for f in a.features} == set(township_codes[:1])
    total = pair[0].extent("buildings", Scope.everything()).count
    assert 0 < a.number_matched < total


def test_spatial_join_answers_agree(pair, township_codes):
    for lon, lat in [(100.74, 32.93), (100.2, 32.8), (101.0, 33.1), (99.0, 30.0)]:
        assert pair[0].locate(lon, lat) == pair[1].locate(lon, lat)
    assert pair[0].locate(100.74, 32.93).township_code in township_codes
