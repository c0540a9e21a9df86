"""Store.durations on both stores: counts, the in-time count and quantiles computed in the database agree with
numpy's linear percentiles over the same rows, within the scope and filter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.errors import BadInput
from geoserver.features import Feature, FeatureQuery

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _events(n: int, seed: int = 7) -> list[Feature]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        took = None if i % 7 == 0 else timedelta(minutes=rnd.randint(1, 60 * 24 * 10), milliseconds=rnd.randint(0, 999))
        out.append(Feature(None, Point(100 + rnd.random(), 33 + rnd.random()), {
            "title": f"d{i}", "type": "garbage" if i % 2 else "dispute", "status": "closed" if took else "reported",
            "reported_at": T0 + timedelta(hours=i), "closed_at": T0 + timedelta(hours=i) + took if took else None,
            "deadline": T0 + timedelta(hours=i + 72) if i % 3 else None}))
    return out


def test_durations_agree_with_numpy_on_both_stores(empty_store):
    features = _events(301)
    empty_store.bulk_load("events", features)
    quantiles = (0.0, 0.25, 0.5, 0.9, 0.99, 1.0)
    for kind in (None, "garbage"):
        query = FeatureQuery(filter={"op": "=", "args": [{"property": "type"}, kind]} if kind else None)
        got = empty_store.durations("events", query, Scope.everything(), "reported_at", "closed_at", by="deadline",
                                    quantiles=quantiles)
        rows = [f.properties for f in features if f.properties["closed_at"] and kind in (None, f.properties["type"])]
        hours = np.array([(p["closed_at"] - p["reported_at"]).total_seconds() / 3600 for p in rows])
        assert got.count == len(rows)
        assert got.in_time == sum(1 for p in rows if p["deadline"] and p["closed_at"] <= p["deadline"])
        for q in quantiles:
            assert got.quantiles[q] == pytest.approx(float(np.percentile(hours, q * 100)), abs=1e-6)


def test_durations_of_nothing_and_outside_the_scope(empty_store):
    empty_store.bulk_load("events", _events(20))
    got = empty_store.durations("events", FeatureQuery(), Scope.nothing(), "reported_at", "closed_at",
                                by="deadline", quantiles=(0.5,))
    assert (got.count, got.in_time, got.quantiles) == (0, 0, {0.5: None})
    with pytest.raises(BadInput):
        empty_store.durations("events", FeatureQuery(), Scope.everything(), "reported_at", "title")
