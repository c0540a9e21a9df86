"""The H3 cells a store keeps for heat-mapped layers, on both stores: written with every insert, update and bulk
load at every resolution 0-15 as h3.latlng_to_cell places the point; rows written without them (by another
program) are filled on the next read grouped by cell; `h3:R` groups combine with the others."""

from __future__ import annotations

import sqlite3
from collections import Counter

import h3
import numpy as np
import psycopg
import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.errors import BadInput
from geoserver.features import Feature, FeatureQuery
from geoserver.store import gpkg, h3cells
from tests.api.county import T0

ALL = Scope.everything()
rng = np.random.default_rng(7)
POINTS = [(float(x), float(y)) for x, y in zip(rng.uniform(100.0, 100.3, 60), rng.uniform(33.0, 33.3, 60),
                                                strict=True)]


def _event(xy, kind="garbage") -> Feature:
    return Feature(None, Point(*xy), {"title": "h3", "type": kind, "status": "reported", "reported_at": T0,
                                      "township_code": "A"})


def _direct(points, resolution: int) -> dict[str, int]:
    return dict(Counter(h3.latlng_to_cell(y, x, resolution) for x, y in points))


def _cells(store, resolution: int, query: FeatureQuery | None = None) -> dict[str, int]:
    return {cell: n for (cell,), n in store.aggregate("events", query or FeatureQuery(), ALL, (f"h3:{resolution}",))}


def _forget_cells(store) -> None:
    """What another program's write leaves: rows without their cells."""
    if store.kind == "postgis":
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("UPDATE events SET h3_cells = NULL")
    else:
        with sqlite3.connect(store.path) as conn:
            gpkg.register_functions(conn)  # the RTree triggers call them, as GDAL and QGIS provide them
            conn.execute("UPDATE events SET h3_cells = NULL")


def test_every_resolution_counts_as_h3_places_each_point(empty_store):
    empty_store.bulk_load("events", [_event(xy) for xy in POINTS[:30]])
    empty_store.insert("events", [_event(xy) for xy in POINTS[30:]], ALL)
    for resolution in h3cells.RESOLUTIONS:
        assert _cells(empty_store, resolution) == _direct(POINTS, resolution)


def test_a_moved_feature_moves_to_its_new_cell(empty_store):
    [stored] = empty_store.insert("events", [_event(POINTS[0])], ALL)
    empty_store.update("events", stored.id, Feature(None, Point(*POINTS[1]), {}), ALL, partial=True)
    assert _cells(empty_store, 9) == _direct([POINTS[1]], 9)


def test_rows_written_without_their_cells_are_filled_on_the_next_read(empty_store):
    empty_store.insert("events", [_event(xy) for xy in POINTS], ALL)
    _forget_cells(empty_store)
    assert _cells(empty_store, 8) == _direct(POINTS, 8)
    assert _cells(empty_store, 12) == _direct(POINTS, 12)


def test_cells_group_with_properties_and_filters_and_limits(empty_store):
    empty_store.insert("events", [_event(xy, "garbage" if i % 3 else "road_damage") for i, xy in enumerate(POINTS)],
                       ALL)
    rows = empty_store.aggregate("events", FeatureQuery(), ALL, ("type", "h3:7"))
    expected = Counter(("garbage" if i % 3 else "road_damage", h3.latlng_to_cell(y, x, 7))
                       for i, (x, y) in enumerate(POINTS))
    assert dict(rows) == dict(expected)
    garbage = FeatureQuery(filter={"op": "=", "args": [{"property": "type"}, "garbage"]})
    assert _cells(empty_store, 7, garbage) == _direct([xy for i, xy in enumerate(POINTS) if i % 3], 7)
    first = empty_store.aggregate("events", FeatureQuery(), ALL, ("h3:10",), limit=3)
    assert [cell for (cell,), _ in first] == sorted(_direct(POINTS, 10))[:3]


@pytest.mark.parametrize("group", ["h3:16", "h3:-1", "h3:x", "h3:"])
def test_a_bad_cell_group_names_group_by(empty_store, group):
    with pytest.raises(BadInput) as err:
        empty_store.aggregate("events", FeatureQuery(), ALL, (group,))
    assert err.value.parameter == "group_by"


def test_a_layer_without_cells_cannot_group_by_them(empty_store):
    with pytest.raises(BadInput) as err:
        empty_store.aggregate("temples", FeatureQuery(), ALL, ("h3:8",))
    assert err.value.parameter == "group_by"
