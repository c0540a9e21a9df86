"""Both stores keep times to the millisecond, so a time written with microseconds reads back alike."""

from datetime import UTC, datetime, timedelta, timezone

from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature, FeatureQuery


def test_microseconds_are_cut_to_milliseconds_in_both_stores(empty_store):
    beijing = timezone(timedelta(hours=8))
    sent = datetime(2026, 5, 4, 9, 30, 15, 123456, tzinfo=beijing)
    [stored] = empty_store.insert("events", [Feature(None, Point(100.75, 32.95), {
        "title": "Pothole", "type": "road_damage", "reported_at": sent})], Scope.everything())
    back = empty_store.get("events", stored.id, Scope.everything())
    assert back.properties["reported_at"] == datetime(2026, 5, 4, 1, 30, 15, 123000, tzinfo=UTC)
    # A query at the exact stored instant finds it in both stores.
    instant = back.properties["reported_at"]
    page = empty_store.query("events", FeatureQuery(datetime=(instant, instant)), Scope.everything())
    assert [f.id for f in page.features] == [stored.id]
