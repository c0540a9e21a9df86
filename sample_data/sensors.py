"""Hourly readings of the monitoring sites, and the alarms they raise (thresholds crossed, sites gone offline).

Each site's series is generated from its own random stream, so readings can be streamed site by site and
the alarms found from the very same values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import shapely

from geoserver.features import Feature
from layers.alarms import THRESHOLDS
from layers.sites import METRICS
from sample_data.scales import LOCAL_OFFSET_S, NOW_S, Scale, rng_for

HOUR_S = 3600
# metric -> (baseline, daily swing, noise sd, lower bound, upper bound, decimals)
MODEL: dict[str, tuple[float, float, float, float, float, int]] = {
    "smoke_density": (0.012, 0.004, 0.004, 0.0, 5.0, 3),
    "temperature": (11.0, 7.0, 1.2, -30.0, 120.0, 1),
    "residual_current": (28.0, 10.0, 6.0, 0.0, 2000.0, 1),
    "cable_temperature": (24.0, 6.0, 1.5, -30.0, 150.0, 1),
    "water_temperature": (6.5, 2.0, 0.3, 0.0, 30.0, 1),
    "ph": (7.6, 0.15, 0.08, 0.0, 14.0, 2),
    "turbidity": (4.0, 1.0, 1.0, 0.0, 1000.0, 1),
    "conductivity": (310.0, 15.0, 12.0, 0.0, 5000.0, 0),
    "dissolved_oxygen": (7.6, 0.6, 0.25, 0.0, 20.0, 2),
    "cod": (8.0, 1.5, 1.5, 0.0, 300.0, 1),
    "pm25": (12.0, 6.0, 4.0, 0.0, 999.0, 0),
    "pm10": (28.0, 10.0, 8.0, 0.0, 999.0, 0),
    "aqi": (32.0, 12.0, 7.0, 0.0, 500.0, 0),
    "fill_level": (0.0, 0.0, 0.0, 0.0, 100.0, 0),
    "online": (1.0, 0.0, 0.0, 0.0, 1.0, 0),
}
# The alarm rules of the sample: metric -> (operator, threshold, level). pH has a floor and a ceiling.
EPISODES_PER_WEEK = 0.15  # sensor anomalies per series and week


@dataclass(frozen=True)
class Site:
    """A monitoring site as the activity generators need it."""

    id: int
    code: str
    name: str
    kind: str
    status: str
    lon: float
    lat: float
    township_code: str
    grid_code: str


@dataclass
class SiteAlarm:
    """A threshold or offline alarm of one site, before ids are given."""

    site: Site
    kind: str  # "threshold" | "site_offline"
    metric: str | None
    value: float | None
    threshold: float | None
    level: str
    raised_s: int
    acknowledged_s: int | None
    resolved_s: int | None
    to_event_s: int | None = None  # when it was turned into an event (异常转事件)


def sites_from_features(features: list[Feature]) -> list[Site]:
    """The sites, from the monitoring_sites features."""
    return [Site(f.id, f.properties["site_code"], f.properties["name"], f.properties["kind"], f.properties["status"],
                 f.geometry.x, f.geometry.y, f.properties["township_code"], f.properties["grid_code"])
            for f in features]


def _hours(scale: Scale, site: Site) -> np.ndarray:
    """Reading times of a site: hourly at its own minute, over the scale's sensor window, up to now."""
    minute = (site.id * 7) % 60
    n = scale.sensor_days * 24
    return NOW_S - (NOW_S % HOUR_S) - HOUR_S * np.arange(n)[::-1] + minute * 60 - HOUR_S


def site_series(scale: Scale, seed: int, site: Site) -> tuple[np.ndarray, dict[str, np.ndarray], int | None]:
    """Times, values per metric and (if the site went offline) when it stopped: one site's readings."""
    rng = rng_for(seed, "readings", site.id)
    t = _hours(scale, site)
    n = len(t)
    stop = None
    if site.status == "offline":
        stop = int(t[int(rng.integers(n // 10, max(n // 10 + 1, 9 * n // 10)))])
    local_h = ((t + LOCAL_OFFSET_S) % 86_400) / 3600.0
    daily = np.sin(2 * np.pi * (local_h - 9.0) / 24.0)  # warmest mid-afternoon
    values: dict[str, np.ndarray] = {}
    for metric in METRICS[site.kind]:
        base, swing, sd, lo, hi, dec = MODEL[metric]
        if metric == "fill_level":
            period = int(rng.choice([24, 48, 72]))
            peak = rng.uniform(40.0, 98.0, n // period + 2)
            phase = (np.arange(n) + int(rng.integers(period))) % period
            cycle = (np.arange(n) + int(rng.integers(period))) // period
            v = 4.0 + (peak[np.minimum(cycle, len(peak) - 1)] - 4.0) * phase / (period - 1)
        elif metric == "online":
            v = np.ones(n)
        else:
            drift = np.cumsum(rng.normal(0, sd * 0.15, n))
            v = base + swing * daily + drift - drift.mean() + rng.normal(0, sd, n)
            if metric in THRESHOLDS:
                for _ in range(int(rng.poisson(EPISODES_PER_WEEK * scale.sensor_days / 7))):
                    op, limit, _level = THRESHOLDS[metric][int(rng.integers(len(THRESHOLDS[metric])))]
                    start, length = int(rng.integers(n)), int(rng.integers(1, 7))
                    factor = rng.uniform(1.1, 1.8)
                    v[start:start + length] = limit * factor if op == ">" else limit / factor
        if site.status == "fault":
            v[n // 2:] = v[n // 2]  # a stuck sensor
        values[metric] = np.round(np.clip(v, lo, hi), dec)
    if stop is not None:
        keep = t < stop
        t = t[keep]
        values = {m: v[keep] for m, v in values.items()}
    return t, values, stop


def _violates(op: str, limit: float, v: np.ndarray) -> np.ndarray:
    return v > limit if op == ">" else v < limit


def site_alarms(scale: Scale, seed: int, site: Site) -> list[SiteAlarm]:
    """The alarms a site raised over the window: one per run of readings past a threshold, and going offline."""
    t, values, stop = site_series(scale, seed, site)
    rng = rng_for(seed, "site-alarms", site.id)
    out: list[SiteAlarm] = []
    for metric, v in values.items():
        for op, limit, level in THRESHOLDS.get(metric, ()):
            bad = _violates(op, limit, v).astype(np.int8)
            edges = np.diff(np.concatenate([[0], bad, [0]]))
            for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                run = v[start:end]
                peak = float(run.max() if op == ">" else run.min())
                raised = int(t[start])
                resolved = int(t[end]) if end < len(t) else None
                out.append(_lifecycle(rng, SiteAlarm(site, "threshold", metric, peak, limit, level, raised,
                                                     None, resolved)))
    if stop is not None and stop + HOUR_S < NOW_S:
        out.append(_lifecycle(rng, SiteAlarm(site, "site_offline", None, None, None, "warning", stop + HOUR_S,
                                             None, None)))
    return out


def _lifecycle(rng: np.random.Generator, alarm: SiteAlarm) -> SiteAlarm:
    """Acknowledgement within the hour for most; critical ones (and some others) turned into events."""
    age = NOW_S - alarm.raised_s
    if alarm.resolved_s is not None or (age > 2 * HOUR_S and rng.random() < 0.7):
        ack = alarm.raised_s + int(rng.integers(120, 3000))
        limit = alarm.resolved_s if alarm.resolved_s is not None else NOW_S
        alarm.acknowledged_s = min(ack, limit)
    wants_event = alarm.level == "critical" or (alarm.kind == "threshold" and alarm.level == "warning"
                                                and rng.random() < 0.25)
    if wants_event and alarm.acknowledged_s is not None:
        alarm.to_event_s = alarm.acknowledged_s + int(rng.integers(60, 900))
        if alarm.to_event_s >= NOW_S:
            alarm.to_event_s = None
    return alarm


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def iter_readings(scale: Scale, seed: int, sites: list[Site]) -> Iterator[list[Feature]]:
    """Every reading, site by site (in time order within a site), as chunks of features with ids from 1."""
    next_id = 1
    for site in sites:
        t, values, _ = site_series(scale, seed, site)
        point = shapely.Point(site.lon, site.lat)
        chunk = []
        times = [_dt(s) for s in t]
        for k, when in enumerate(times):
            for metric, v in values.items():
                chunk.append(Feature(next_id, point, {
                    "site_id": site.id, "kind": site.kind, "metric": metric, "value": float(v[k]),
                    "unit": METRICS[site.kind][metric], "observed_at": when,
                    "township_code": site.township_code, "grid_code": site.grid_code}))
                next_id += 1
        yield chunk
