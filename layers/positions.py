"""Live positions (实时位置): each grid worker's latest fix, one point per worker, moved by every batch that
brings a newer fix (by fix time, not arrival), so the one-map screen shows who is where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shapely.geometry import Point

from geoserver.access import Scope
from geoserver.catalog import Layer, Property, Style
from geoserver.features import Feature, FeatureQuery
from geoserver.store import Store
from layers.common import GRID, TOWNSHIP

POSITIONS = Layer(
    id="positions",
    title="Live positions",
    description="Each grid worker's latest GPS fix: where he is, when, how fast, his phone's battery.",
    geometry_type="Point",
    properties=(
        Property("worker", "string", "Grid worker", required=True),
        Property("device", "string", "Device", in_tiles=False),
        Property("recorded_at", "datetime", "Fix time", required=True),
        Property("speed", "number", "Speed (m/s)"),
        Property("battery", "number", "Battery (%)"),
        Property("patrol_id", "integer", "Patrol", in_tiles=False),
        TOWNSHIP,
        GRID,
    ),
    time_field="recorded_at",
    min_zoom=8,
    style=Style("circle", "#e67e22", radius=5),
    live=True,  # written by the uploads' workflow only (no writers: only admins edit it by hand)
    keywords=("patrols", "positions", "live"),
)


def move(store: Store, worker: str, at: datetime, lon: float, lat: float, extra: dict[str, Any]) -> bool:
    """Move the worker's position to a fix at `at` if it is newer than the one shown (inside the caller's
    transaction); returns whether it moved. One write, so one change on the stream, per batch."""
    current = store.query(POSITIONS.id, FeatureQuery(
        filter={"op": "=", "args": [{"property": "worker"}, worker]}, limit=1, properties=("recorded_at",),
        with_geometry=False), Scope.everything()).features
    props = {"worker": worker, "recorded_at": at, **{k: extra.get(k) for k in ("device", "speed", "battery",
                                                                                "patrol_id")}}
    if not current:
        store.insert(POSITIONS.id, [Feature(None, Point(lon, lat), props)], Scope.everything())
        return True
    if current[0].properties["recorded_at"] >= at:
        return False
    store.update(POSITIONS.id, int(current[0].id), Feature(None, Point(lon, lat), props),  # type: ignore[arg-type]
                 Scope.everything())
    return True
