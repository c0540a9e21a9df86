"""A patrol's track as arrays: fixes in time order, impossible jumps, the line and its figures.

Everything works on whole numpy arrays (times in epoch seconds, lon, lat), so recomputing a day of 1 Hz fixes
(28,800) after each batch costs milliseconds. Fixes are ordered by time, then lon, then lat, so equal times
order the same way whichever batch brought them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import LineString

MAX_SPEED = 70.0  # m/s (252 km/h): faster than that between two fixes is an impossible jump
_GEOD = Geod(ellps="WGS84")


def time_order(t: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The indexes putting fixes in time order (ties by lon, then lat)."""
    return np.lexsort((lat, lon, t))


def legs(t: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic length (m) and speed (m/s) of each leg between fixes in time order (same-time fixes count as
    one second apart)."""
    if len(t) < 2:
        return np.zeros(0), np.zeros(0)
    _, _, dist = _GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    dist = np.abs(np.asarray(dist, dtype=float))
    return dist, dist / np.maximum(np.abs(np.diff(t)), 1.0)


def spike_mask(t: np.ndarray, lon: np.ndarray, lat: np.ndarray, speed: np.ndarray | None = None) -> np.ndarray:
    """True for isolated impossible jumps: fixes (in time order) reached too fast from both neighbours
    (`speed`: the legs' speeds when already computed)."""
    mask = np.zeros(len(t), dtype=bool)
    if speed is None:
        _, speed = legs(t, lon, lat)
    fast = speed > MAX_SPEED
    if len(fast) >= 2:
        mask[1:-1] = fast[:-1] & fast[1:]
    return mask


def stub(lon: float, lat: float) -> LineString:
    """The line of a patrol with fewer than two fixes: a centimetre long (a line needs two distinct points)."""
    return LineString([(lon, lat), (lon + 1e-7, lat)])


def millimetres(dist: np.ndarray) -> np.ndarray:
    """Leg lengths in whole millimetres: summed as integers, a mileage is the same whatever order its legs
    were added up in (a batch extending a track adds to the stored sum; a late batch sums every leg again)."""
    return np.rint(np.asarray(dist, dtype=float) * 1000.0).astype(np.int64)


def duration(first: float, last: float) -> int:
    """Whole seconds from the first to the last fix (epoch seconds, millisecond precision)."""
    return int(round(last - first, 3) // 1)


def statistics(t: np.ndarray, lon: np.ndarray, lat: np.ndarray,
               computed: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[LineString, dict[str, Any]]:
    """The line, geodesic distance (m, to the millimetre), duration and fix count of fixes in time order,
    isolated spikes left out (`computed`: their legs' lengths and speeds when already known)."""
    dist, speed = computed if computed is not None else legs(t, lon, lat)
    spikes = spike_mask(t, lon, lat, speed)
    keep = ~spikes
    kt, kx, ky = t[keep], lon[keep], lat[keep]
    mm = int(millimetres(legs(kt, kx, ky)[0] if spikes.any() else dist).sum())
    line = shapely.linestrings(np.column_stack([kx, ky])) if len(kt) > 1 else stub(float(kx[0]), float(ky[0]))
    return line, {"distance_m": mm / 1000, "duration_s": duration(float(kt[0]), float(kt[-1])),
                  "point_count": len(t)}
