"""The tiny API county (tests/api/county.py) plus building footprints and a dense cluster of events."""

from __future__ import annotations

from datetime import timedelta

from shapely.geometry import Point, box

from geoserver.features import Feature
from geoserver.store import Store
from tests.api import county as base

# Footprints: a 12x12 block of houses in each township, around (100.25, 33.25) and (100.75, 33.25).
BLOCK = 12
STEP = 0.0004
SIZE = 0.00025
TOWN_CENTRES = {"A": (100.25, 33.25), "B": (100.75, 33.25)}


def buildings() -> list[Feature]:
    """Square footprints with floors, heights and uses."""
    out = []
    for code, (cx, cy) in TOWN_CENTRES.items():
        for i in range(BLOCK):
            for j in range(BLOCK):
                x = cx - BLOCK * STEP / 2 + i * STEP
                y = cy - BLOCK * STEP / 2 + j * STEP
                floors = 1 + (i + j) % 4
                out.append(Feature(None, box(x, y, x + SIZE, y + SIZE), {
                    "floors": floors, "height": 3.0 * floors, "use": "residential" if (i * j) % 5 else "public",
                    "year_built": 1990 + i, "is_key": i == j, "name": f"house {code}{i}-{j}"}))
    return out


def dense_events() -> list[Feature]:
    """Thirty events near each town centre (they cluster at low zooms)."""
    out = []
    for code, (cx, cy) in TOWN_CENTRES.items():
        for i in range(30):
            out.append(Feature(None, Point(cx + 0.001 * (i % 6), cy + 0.0013 * (i // 6) + 0.01), {
                "title": f"dense {code}{i}", "type": "other", "status": "dispatched" if i % 3 else "closed",
                "priority": "high", "reported_at": base.T0 + timedelta(hours=i), "deadline": base.T0 + timedelta(days=3),
                "description": "long free text that never goes into tiles"}))
    return out


def fill(store: Store) -> None:
    """The tiny county with buildings and dense events."""
    base.fill(store)
    store.bulk_load("buildings", buildings())
    store.bulk_load("events", dense_events())
