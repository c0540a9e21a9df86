"""How big the sample county is: one named Scale per size, and the fixed clock everything is dated by."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

GENERATOR_VERSION = "1.3.0"  # 1.1: sample API keys and the external account's grants; 1.2: alarms' site kind;
# 1.3: events carry routing, attachment and task properties, patrols their fixes' columns, positions are filled,
# and every grid has its team (its full-time worker) bound
# The sample's "now": every date is relative to it, never to the wall clock (12:00 Beijing time, so the
# morning patrols of the last day are still under way).
SAMPLE_NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
NOW_S = int(SAMPLE_NOW.timestamp())
DAY_S = 86_400
# Local time is Beijing time (UTC+8): patrols and most reports happen in local daytime.
LOCAL_OFFSET_S = 8 * 3600


@dataclass(frozen=True)
class Scale:
    """Target sizes of one sample: feature counts, history lengths and the shape of the grid network."""

    name: str
    buildings: int
    events: int
    patrol_workers: int
    patrol_days: int
    sensor_days: int
    sites: int
    temples: int
    town_grids: int
    township_grids: tuple[int, int]
    raster_arcsec: float = 1.0  # pixel size of the DEM and the imagery


SCALES: dict[str, Scale] = {
    "small": Scale("small", buildings=1_500, events=1_000, patrol_workers=8, patrol_days=2, sensor_days=2,
                   sites=30, temples=6, town_grids=102, township_grids=(8, 20), raster_arcsec=4.0),
    "default": Scale("default", buildings=30_000, events=20_000, patrol_workers=150, patrol_days=7,
                     sensor_days=7, sites=300, temples=40, town_grids=102, township_grids=(8, 20)),
    "large": Scale("large", buildings=1_000_000, events=1_000_000, patrol_workers=1_000, patrol_days=45,
                   sensor_days=30, sites=3_000, temples=120, town_grids=300, township_grids=(100, 140)),
}


def get_scale(name: str) -> Scale:
    """The named scale, or ValueError listing the known ones."""
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown scale {name!r}; known: {', '.join(SCALES)}") from None


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent random stream for one part of the sample (same seed and keys, same numbers)."""
    words = [seed & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(words))
