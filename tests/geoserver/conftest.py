"""The `store` fixture of the Store contract suite: the handmade county in each store."""

from __future__ import annotations

import pytest
from shapely.geometry import LineString, MultiPolygon, Point, box

from geoserver.features import Feature
from tests.geoserver.contract_county import (
    BUILDINGS,
    EAST,
    EAST_BOX,
    EVENTS,
    GRIDS,
    PATROLS,
    WEST,
    WEST_BOX,
    t,
)


@pytest.fixture
def store(empty_store):
    """A store holding the handmade county, loaded through bulk_load (events keyed by spatial join)."""
    s = empty_store
    s.bulk_load("townships", [
        Feature(1, MultiPolygon([box(*WEST_BOX)]), {"township_code": WEST, "name": "West", "kind": "township"}),
        Feature(2, MultiPolygon([box(*EAST_BOX)]), {"township_code": EAST, "name": "East", "kind": "town"}),
    ])
    s.bulk_load("grids", [
        Feature(i, MultiPolygon([box(x0, 32.80, x1, 32.90)]), {"grid_code": code, "township_code": town})
        for i, (code, (town, x0, x1)) in enumerate(GRIDS.items(), start=1)
    ])
    s.bulk_load("events", [
        Feature(fid, Point(lon, lat), {"type": typ, "status": status, "priority": prio, "reported_at": t(at),
                                       "title": title})
        for fid, (lon, lat, typ, status, prio, at, title) in EVENTS.items()
    ])
    s.bulk_load("buildings", [Feature(fid, geom, props) for fid, (geom, props) in BUILDINGS.items()])
    s.bulk_load("patrols", [
        Feature(fid, LineString(line), {"worker": f"worker-{fid}", "started_at": t(start),
                                        "ended_at": t(end) if end else None})
        for fid, (line, start, end) in PATROLS.items()
    ])
    return s
