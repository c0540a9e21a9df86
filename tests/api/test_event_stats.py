"""GET /stats/events on both stores: grouped counts equal the items' numberMatched for the same filter, within
the caller's scope; local calendar buckets; overdue now; handling hours and the on-time rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.features import Feature
from tests.api.conftest import login

ITEMS = "/collections/events/items"


@pytest.fixture(scope="module")
def admin(client):
    return login(client, "admin")


def _matched(client, headers, flt: str) -> int:
    return client.get(ITEMS, params={"filter": flt, "limit": 1}, headers=headers).json()["numberMatched"]


def test_grouped_counts_equal_the_items_for_the_same_filter(client, admin):
    body = client.get("/stats/events", params={"group_by": "township_code,type", "filter": "status = 'reported'"},
                      headers=admin).json()
    seen = {(g["township_code"], g["type"]): g["count"] for g in body["groups"]}
    for town, kind in product(("A", "B"), ("garbage", "road_damage")):
        expected = _matched(client, admin, f"status = 'reported' AND township_code = '{town}' AND type = '{kind}'")
        assert seen.get((town, kind), 0) == expected
    assert body["total"] == _matched(client, admin, "status = 'reported'")


def test_a_leader_counts_only_his_township(client):
    body = client.get("/stats/events", params={"group_by": "township_code"}, headers=login(client, "leader-A")).json()
    assert [g["township_code"] for g in body["groups"]] == ["A"]
    assert body["total"] == _matched(client, login(client, "leader-A"), "true")


def test_days_weeks_and_months_are_the_county_s_local_calendar(client, admin):
    # The tiny county's events are reported at 00:00 UTC = 08:00 in the county, one day apart from 1 May 2024.
    flt = "reported_at < TIMESTAMP('2024-05-11T00:00:00Z') AND title LIKE 'event %'"
    days = client.get("/stats/events", params={"group_by": "day", "filter": flt}, headers=admin).json()["groups"]
    assert [(g["day"], g["count"]) for g in days] == [(f"2024-05-{d:02d}", 2) for d in range(1, 11)]
    weeks = client.get("/stats/events", params={"group_by": "week", "filter": flt}, headers=admin).json()["groups"]
    assert [(g["week"], g["count"]) for g in weeks] == [("2024-04-29", 10), ("2024-05-06", 10)]  # Mondays
    months = client.get("/stats/events", params={"group_by": "month", "filter": flt}, headers=admin).json()
    assert months["groups"] == [{"month": "2024-05", "count": 20}]


def test_overdue_now_and_handling_time_and_on_time_rate(client, admin):
    store, t0 = client.app.state.store, datetime(2020, 1, 1, tzinfo=UTC)

    def event(status, hours_to_close, deadline_hours):
        return Feature(None, Point(100.2, 33.2), {
            "title": "stats", "type": "dispute", "status": status, "reported_at": t0,
            "closed_at": t0 + timedelta(hours=hours_to_close) if hours_to_close else None,
            "deadline": t0 + timedelta(hours=deadline_hours)})

    store.insert("events", [event("closed", 10, 24), event("closed", 30, 24), event("closed", 20, 24),
                            event("in_progress", None, 1), event("reported", None, 10**6)], Scope.everything())
    body = client.get("/stats/events", params={"filter": "type = 'dispute' AND reported_at >= TIMESTAMP('2020-01-01T00:00:00Z') AND reported_at < TIMESTAMP('2020-01-02T00:00:00Z')"},
                      headers=admin).json()
    assert body["total"] == 5
    assert body["overdue_now"] == 1
    assert body["handling"] == {"closed": 3, "on_time": 2, "on_time_rate": 0.6667, "hours_p50": 20.0,
                                "hours_p90": 28.0}


@pytest.mark.parametrize("params, field", [
    ({"group_by": "colour"}, "group_by"), ({"group_by": "type,status,day,month"}, "group_by"),
    ({"group_by": "type,type"}, "group_by"), ({"filter": "status = "}, "filter"), ({"colour": "red"}, "colour"),
])
def test_bad_statistics_requests_are_400_naming_the_parameter(client, admin, params, field):
    r = client.get("/stats/events", params=params, headers=admin)
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text
