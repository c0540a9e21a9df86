"""Replay of patrols (巡查轨迹回放) as OGC API - Moving Features Part 1 resources in MF-JSON.

A patrol is one moving feature whose movement is one temporal primitive geometry (a `MovingPoint`, id "1",
linear interpolation) made of every stored fix of the patrol in time order. Fixes the upload rejected are
never stored, so they are never replayed; two stored fixes at the same instant (two phone ids) replay as the
first one, because a MovingPoint's datetimes are unique. Who may replay a patrol: whoever may read it (the
township scope, in the query), and a grid worker only his own (geoserver.access.track_owner); others get 404.

The fixes are read in one columnar query ordered by time (the (patrol_id, recorded_at) index); positions,
distance, velocity and acceleration are computed on numpy arrays, and the MF-JSON documents hold those arrays
(datetimes as datetime64, coordinates as an n x 2 array) for api/jsonout.py to write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from pyproj import Geod

from geoserver.access import Principal, Scope, scope_for, track_owner
from geoserver.catalog import Catalog
from geoserver.errors import NotFound
from geoserver.features import Feature, FeatureQuery
from geoserver.geojson import to_geojson
from geoserver.store import Store

PATROLS = "patrols"
POINTS = "track_points"
TG_ID = "1"  # the one temporal primitive geometry of a patrol
# Instants in one `leaf`: a URL with more would not pass common servers' request-line limits anyway; a time
# slider asks for a handful.
MAX_LEAF = 1_000
CRS = {"type": "Name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
TRS = {"type": "Name", "properties": {"name": "urn:ogc:data:time:iso8601"}}
# Units of the derived curves as UN/CEFACT common codes (the 3-letter `form` of a TemporalProperty).
CURVES = {"distance": "MTR", "velocity": "MTS", "acceleration": "MSK"}
_GEOD = Geod(ellps="WGS84")

Window = tuple[datetime | None, datetime | None]


@dataclass
class Track:
    """A patrol and its fixes in time order: times (epoch ms, strictly increasing), lon, lat."""

    patrol: Feature
    t: np.ndarray
    lon: np.ndarray
    lat: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def part(self, keep: slice | np.ndarray) -> Track:
        """The fixes selected by a slice or mask."""
        return Track(self.patrol, self.t[keep], self.lon[keep], self.lat[keep])


def patrol(store: Store, catalog: Catalog, principal: Principal, patrol_id: int, *,
           geometry: bool = True) -> Feature:
    """The patrol if the caller may replay it (scope and owner in the query); NotFound otherwise."""
    owner = track_owner(principal)
    filt = None if owner is None else {"op": "=", "args": [{"property": "worker"}, owner]}
    page = store.query(PATROLS, FeatureQuery(ids=(patrol_id,), filter=filt, limit=1, with_geometry=geometry),
                       scope_for(principal, catalog.get(PATROLS), "read"))
    if not page.features:
        raise NotFound(f"no patrol {patrol_id}", parameter="featureId")
    return page.features[0]


def track(store: Store, catalog: Catalog, principal: Principal, patrol_id: int, window: Window | None = None, *,
          geometry: bool = False) -> Track:
    """The caller's view of a patrol's fixes, optionally only those within a closed time window (and the
    patrol's line with `geometry`)."""
    return fixes(store, patrol(store, catalog, principal, patrol_id, geometry=geometry), window)


def version(found: Feature) -> str | None:
    """A validator of everything a replay of a stopped patrol shows: its properties, whose fix count and last
    fix change with any fix stored (a late batch from a phone back online changes both, and the line with
    them). None for a patrol still running (it changes with every batch; no validator is worth its cost)."""
    p = found.properties
    if p.get("status") != "finished" and p.get("ended_at") is None:
        return None
    return hashlib.blake2b(repr((found.id, sorted(p.items()))).encode(), digest_size=12).hexdigest()


def fixes(store: Store, found: Feature, window: Window | None = None) -> Track:
    """The fixes of a patrol the caller may replay (found by `patrol`), in time order, one per instant."""
    query = FeatureQuery(filter={"op": "=", "args": [{"property": "patrol_id"}, found.id]}, datetime=window,
                         sortby=(("recorded_at", True),))
    # The patrol was authorised above; its fixes are its own whichever township they fall in.
    cols = store.columns(POINTS, query, Scope.everything(), ("recorded_at",))
    t = np.round(cols.values["recorded_at"] * 1000).astype(np.int64)  # epoch seconds, exact to the ms
    first = np.ones(len(t), dtype=bool)
    first[1:] = t[1:] > t[:-1]  # one fix per instant
    return Track(found, t[first], cols.lon[first], cols.lat[first])


def instants(t_ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as datetime64 (the answers write them as RFC 3339 UTC texts)."""
    return t_ms.astype("datetime64[ms]")


def epoch_ms(value: datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    return round(value.timestamp() * 1000)


# -- selections --------------------------------------------------------------------------------------------
def sub_trajectory(tr: Track, start: datetime, end: datetime) -> Track:
    """The track cut to [start, end], with interpolated positions at both ends where the track runs there."""
    a, b = epoch_ms(start), epoch_ms(end)
    inside = tr.part((tr.t >= a) & (tr.t <= b))
    ends = [x for x in (a, b) if len(tr) and tr.t[0] <= x <= tr.t[-1] and x not in inside.t]
    if not ends:
        return inside
    at = at_instants(tr, np.array(ends, dtype=np.int64))
    order = np.argsort(np.concatenate((inside.t, at.t)), kind="stable")
    return Track(tr.patrol, np.concatenate((inside.t, at.t))[order], np.concatenate((inside.lon, at.lon))[order],
                 np.concatenate((inside.lat, at.lat))[order])


def at_instants(tr: Track, instants: np.ndarray) -> Track:
    """Positions at the given instants (epoch ms, increasing), linearly interpolated; instants before the
    first fix or after the last have no position and are left out."""
    if not len(tr):
        return tr.part(slice(0, 0))
    inst = instants[(instants >= tr.t[0]) & (instants <= tr.t[-1])]
    return Track(tr.patrol, inst, np.interp(inst, tr.t, tr.lon), np.interp(inst, tr.t, tr.lat))


def intersects(tr: Track, bbox: tuple[float, float, float, float]) -> bool:
    """True if the track (its fixes joined by lines) meets the lon/lat box."""
    if not len(tr):
        return False
    box = shapely.box(*bbox)
    if len(tr) == 1:
        return bool(box.intersects(shapely.Point(tr.lon[0], tr.lat[0])))
    return bool(box.intersects(shapely.LineString(np.column_stack((tr.lon, tr.lat)))))


# -- MF-JSON -----------------------------------------------------------------------------------------------
def moving_point(tr: Track, interpolation: str = "Linear") -> dict[str, Any]:
    """The track as an MF-JSON MovingPoint (TemporalPrimitiveGeometry)."""
    return {"id": TG_ID, "type": "MovingPoint", "datetimes": instants(tr.t),
            "coordinates": np.column_stack((tr.lon, tr.lat)), "interpolation": interpolation, "crs": CRS, "trs": TRS}


def moving_feature(tr: Track) -> dict[str, Any]:
    """The patrol as an MF-JSON MovingFeature: its GeoJSON (line and properties) plus life span, bbox, crs,
    trs and the temporal geometry of every fix (left out while it has none)."""
    line = tr.patrol.geometry
    out = to_geojson(Feature(tr.patrol.id, None, tr.patrol.properties))
    if line is not None:  # the line's vertices as one array (api/jsonout.py writes it fast)
        out["geometry"] = {"type": line.geom_type, "coordinates": shapely.get_coordinates(line)}
    p = tr.patrol.properties
    out["time"] = [_text(p.get("started_at")), _text(p.get("ended_at"))]
    if len(tr):
        out["bbox"] = [float(tr.lon.min()), float(tr.lat.min()), float(tr.lon.max()), float(tr.lat.max())]
        out["temporalGeometry"] = moving_point(tr)
    out["crs"], out["trs"] = CRS, TRS
    return out


def curve(tr: Track, kind: str) -> np.ndarray:
    """Distance travelled (m, geodesic, from the first fix), velocity (m/s) or acceleration (m/s²) at each fix.

    Velocity and acceleration are the time derivatives of the distance curve (second-order central
    differences, one-sided at the ends); a track of one fix has distance 0 and nothing else.
    """
    n = len(tr)
    if n < 2:
        return np.zeros(n)
    _, _, legs = _GEOD.inv(tr.lon[:-1], tr.lat[:-1], tr.lon[1:], tr.lat[1:])
    distance = np.concatenate(([0.0], np.cumsum(np.abs(legs))))
    if kind == "distance":
        return distance
    secs = (tr.t - tr.t[0]) / 1000.0
    velocity = np.gradient(distance, secs)
    return velocity if kind == "velocity" else np.gradient(velocity, secs)


def temporal_property(kind: str, datetimes: np.ndarray, values: np.ndarray, interpolation: str) -> dict[str, Any]:
    """A derived curve as an MF-JSON TemporalProperty (type TReal)."""
    sequence = []
    if len(datetimes):
        sequence.append({"datetimes": instants(datetimes), "values": np.round(values, 4),
                         "interpolation": interpolation})
    return {"name": kind, "type": "TReal", "form": CURVES[kind], "valueSequence": sequence}


@dataclass(frozen=True)
class Selection:
    """What a tgsequence or curve request selects: a time window (its ends interpolated with `clip`, the
    standard's subTrajectory / subTemporalValue), instants (`leaf`, epoch ms), a lon/lat bbox."""

    window: Window | None = None
    clip: bool = False
    leaf: np.ndarray | None = None
    bbox: tuple[float, float, float, float] | None = None

    def read_window(self) -> Window | None:
        """The window the fixes are read in (all of them when the ends are to be interpolated)."""
        return None if self.clip or self.leaf is not None else self.window

    def apply(self, tr: Track) -> Track:
        """The track as selected: positions at the leaf instants, or the window (clipped or not)."""
        if self.leaf is not None:
            tr = at_instants(tr, self.leaf)
        elif self.clip and self.window is not None:
            start, end = self.window
            return sub_trajectory(tr, start, end)  # type: ignore[arg-type]  # api checks it is bounded
        if self.window is not None:
            a, b = self.window
            keep = np.ones(len(tr), dtype=bool)
            if a is not None:
                keep &= tr.t >= epoch_ms(a)
            if b is not None:
                keep &= tr.t <= epoch_ms(b)
            tr = tr.part(keep)
        return tr


def sequence(tr: Track, selection: Selection, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The MF-JSON temporal primitive geometries selected (at most `limit`) and how many matched."""
    if selection.bbox is not None and not intersects(tr, selection.bbox):
        return [], 0
    part = selection.apply(tr)
    if not len(part):
        return [], 0
    interpolation = "Discrete" if selection.leaf is not None else "Linear"
    return [moving_point(part, interpolation)][:limit], 1


def derived(tr: Track, kind: str, selection: Selection) -> dict[str, Any]:
    """The distance, velocity or acceleration curve of the track as a TemporalProperty, over the selection
    (values at `leaf` instants and clipped window ends are interpolated from the curve at the fixes)."""
    values = curve(tr, kind)
    part = selection.apply(tr)
    if len(part) and len(tr):
        values = np.interp(part.t, tr.t, values)
    else:
        values = values[:0]
    return temporal_property(kind, part.t, values, "Discrete" if selection.leaf is not None else "Linear")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else str(value)
