"""A tiny handmade county for API tests: townships A and B side by side, grids, events, temples, accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shapely.geometry import MultiPolygon, Point, box

from geoserver.apikeys import hash_api_key
from geoserver.features import Feature
from geoserver.passwords import hash_password
from geoserver.store import ApiKeyRecord, Store, UserRecord
from layers.event_types import seed_defaults

# Township A spans lon 100.0-100.5, B spans 100.5-101.0; both lat 33.0-33.5.
TOWNSHIPS = {"A": (100.0, 33.0, 100.5, 33.5), "B": (100.5, 33.0, 101.0, 33.5)}
PASSWORD = "onemap"
EXTERNAL_KEY = "om_test_external"
LEADER_KEY = "om_test_leader_A"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _grids():
    for code, (x0, y0, x1, y1) in TOWNSHIPS.items():
        xm = (x0 + x1) / 2
        yield f"{code}1", code, box(x0, y0, xm, y1)
        yield f"{code}2", code, box(xm, y0, x1, y1)


def events() -> list[Feature]:
    """Ten events in each township, on a line across it, every one a day apart."""
    out = []
    for code, (x0, y0, x1, _) in TOWNSHIPS.items():
        for i in range(10):
            lon = x0 + 0.025 + i * (x1 - x0 - 0.05) / 9
            out.append(Feature(None, Point(lon, y0 + 0.1 + 0.02 * i), {
                "title": f"event {code}{i}", "type": "garbage" if i % 2 else "road_damage",
                "status": "reported", "priority": "normal", "reported_at": T0 + timedelta(days=i),
                "reporter": f"worker-{code}1"}))
    return out


def fill(store: Store) -> None:
    """Load the tiny county into an initialised, empty store."""
    store.bulk_load("townships", [
        Feature(None, MultiPolygon([box(*bb)]), {"township_code": c, "name": f"Township {c}", "kind": "township",
                                                  "population": 1000})
        for c, bb in TOWNSHIPS.items()])
    store.bulk_load("grids", [
        Feature(None, MultiPolygon([g]), {"grid_code": gc, "township_code": tc, "name": f"Grid {gc}",
                                          "grid_kind": "basic", "is_key": gc.endswith("1")})
        for gc, tc, g in _grids()])
    store.bulk_load("events", events())
    seed_defaults(store)  # the event types a county starts with
    store.bulk_load("temples", [
        Feature(None, Point(100.25, 33.25), {"name": "Temple A"}),
        Feature(None, Point(100.75, 33.25), {"name": "Temple B"})])
    h = hash_password(PASSWORD)
    store.put_users([
        UserRecord("admin", "admin", h), UserRecord("operator", "operator", h),
        UserRecord("leader-A", "leader", h, townships=("A",)),
        UserRecord("leader-B", "leader", h, townships=("B",)),
        UserRecord("worker-A1", "worker", h, townships=("A",), grids=("A1",)),
        UserRecord("dept-religion", "department", h, townships=("A", "B"), department="religion"),
        UserRecord("external", "external", h, extra={"grants": [["grids", "read", "*"]]}),
    ])
    store.put_api_key(ApiKeyRecord(hash_api_key(EXTERNAL_KEY), "external", "test external platform"))
    store.put_api_key(ApiKeyRecord(hash_api_key(LEADER_KEY), "leader-A", "test leader"))
