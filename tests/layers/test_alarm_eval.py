"""Alarm rules evaluated on both stores: value rules on ingest (in the readings' transaction), hysteresis, N
consecutive readings, rates, bands, per-site overrides, one open alarm per (site, rule), duration and no-data
rules on a clock the test moves (never a sleep), and state shared by two store objects (two processes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Point

from geoserver.access import Principal, Scope
from geoserver.features import Feature, FeatureQuery
from geoserver.store import open_store
from layers import alarm_eval, alarm_rules, ingest
from tests.api import county

T = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
OPERATOR = Principal("operator", "operator")
ADMIN = Principal("admin", "admin")


@pytest.fixture
def store(empty_store):
    """The tiny county with seeded event types and alarm rules, a temperature sensor and a water station in A."""
    county.fill(empty_store)
    alarm_rules.seed_defaults(empty_store)
    empty_store.insert("monitoring_sites", [
        Feature(None, Point(100.1, 33.1), {"site_code": "T-A1", "name": "old house", "kind": "temperature"}),
        Feature(None, Point(100.4, 33.2), {"site_code": "W-A1", "name": "river", "kind": "water_quality"})],
        Scope.everything())
    return empty_store


def _site(store, code):
    [f] = store.query("monitoring_sites", FeatureQuery(filter={"op": "=", "args": [{"property": "site_code"}, code]},
                                                       limit=1), Scope.everything()).features
    return f.id


def _send(store, site, metric, values, start=T, step=timedelta(minutes=1), source="http"):
    """Send readings one batch each, a minute apart; returns the time of the last."""
    unit = {"temperature": "°C", "ph": "pH", "dissolved_oxygen": "mg/L"}[metric]
    at = start
    for v in values:
        report = ingest.ingest(store, store.catalog, OPERATOR, [{
            "site_id": site, "metric": metric, "value": v, "unit": unit,
            "observed_at": at.isoformat().replace("+00:00", "Z")}], source=source)
        assert report.accepted == 1, report.lines
        at += step
    return at - step


def _alarms(store, **where):
    cond = [{"op": "=", "args": [{"property": k}, v]} for k, v in where.items()]
    f = {"op": "and", "args": cond} if len(cond) > 1 else (cond[0] if cond else None)
    return store.query("alarms", FeatureQuery(filter=f, limit=100), Scope.everything()).features


def _timeline(store, alarm_id):
    return [r["action"] for r in store.rows("alarm_timeline", {"alarm_id": alarm_id}, order_by=("at",))]


def test_a_crossing_raises_one_alarm_that_repeats_then_clears_only_past_the_hysteresis(store):
    site = _site(store, "T-A1")
    _send(store, site, "temperature", [20, 60], source="mqtt")  # seeded: above 57, clears at 51.3
    [alarm] = _alarms(store, site_id=site)
    p = alarm.properties
    assert (p["alarm_kind"], p["status"], p["level"], p["metric"]) == ("threshold", "raised", "critical", "temperature")
    assert (p["value"], p["threshold"], p["count"], p["peak"]) == (60, 57, 1, 60)
    assert p["township_code"] == "A" and p["site_kind"] == "temperature" and "old house" in p["message"]
    _send(store, site, "temperature", [63, 58], start=T + timedelta(minutes=2))
    [alarm] = _alarms(store, site_id=site)  # the repeat updated it: one open alarm per (site, rule)
    p = alarm.properties
    assert (p["count"], p["peak"], p["last_value"], p["status"]) == (3, 63, 58, "raised")
    assert p["last_at"] == T + timedelta(minutes=3)
    _send(store, site, "temperature", [54], start=T + timedelta(minutes=4))  # below 57, above 51.3: still open
    assert _alarms(store, site_id=site)[0].properties["status"] == "raised"
    _send(store, site, "temperature", [50], start=T + timedelta(minutes=5))
    [alarm] = _alarms(store, site_id=site)
    assert alarm.properties["status"] == "resolved" and alarm.properties["resolved_at"] == T + timedelta(minutes=5)
    assert _timeline(store, alarm.id) == ["raise", "repeat", "repeat", "auto-resolve"]
    _send(store, site, "temperature", [70], start=T + timedelta(minutes=6))  # a new crossing: a new alarm
    assert sorted(a.properties["status"] for a in _alarms(store, site_id=site)) == ["raised", "resolved"]
    # Every alarm change reached the change log (the stream and the tiles follow it).
    changes = [c for c in store.changes_since(0, 10_000) if c.layer_id == "alarms"]
    assert len(changes) == 5 and len({c.op for c in changes}) == 2


def test_a_site_override_needs_three_consecutive_readings_and_a_broken_run_starts_over(store):
    site = _site(store, "T-A1")
    alarm_rules.create_rule(store, ADMIN, {"site_id": site, "metric": "temperature", "condition": "above",
                                           "threshold": 40, "clear": 35, "for_readings": 3, "severity": "warning"})
    _send(store, site, "temperature", [45, 46, 30, 45, 46])  # the kind's rule (57) is overridden for this site
    assert _alarms(store, site_id=site) == []
    _send(store, site, "temperature", [47], start=T + timedelta(minutes=5))
    [alarm] = _alarms(store, site_id=site)
    assert (alarm.properties["count"], alarm.properties["level"], alarm.properties["threshold"]) == (3, "warning", 40)


def test_a_disabled_override_silences_the_kinds_rule_for_one_site(store):
    site = _site(store, "T-A1")
    alarm_rules.create_rule(store, ADMIN, {"site_id": site, "metric": "temperature", "condition": "above",
                                           "threshold": 40, "enabled": False})
    _send(store, site, "temperature", [90, 95])
    assert _alarms(store, site_id=site) == []


def test_a_band_rule_raises_on_either_side_and_a_rate_rule_on_a_fast_rise(store):
    water, temp = _site(store, "W-A1"), _site(store, "T-A1")
    _send(store, water, "ph", [7.5, 6.0])  # seeded band 6.5-8.5
    [alarm] = _alarms(store, site_id=water)
    assert (alarm.properties["threshold"], alarm.properties["value"]) == (6.5, 6.0)
    _send(store, water, "ph", [9.5, 6.6], start=T + timedelta(minutes=2))  # 6.6 is inside the band, not the clear band
    assert _alarms(store, site_id=water)[0].properties["peak"] == 9.5  # 1.0 past the band beats 0.5
    assert _alarms(store, site_id=water)[0].properties["status"] == "raised"
    alarm_rules.create_rule(store, ADMIN, {"site_kind": "temperature", "metric": "temperature",
                                           "condition": "rate_above", "threshold": 5, "clear": 1})
    _send(store, temp, "temperature", [20, 23, 30], start=T + timedelta(minutes=10))  # +3/min, then +7/min
    [alarm] = _alarms(store, site_id=temp)
    assert (alarm.properties["alarm_kind"], alarm.properties["value"]) == ("rate", 7)


def test_a_silent_site_raises_its_offline_alarm_on_the_clock_once_and_data_resolves_it(store):
    site = _site(store, "T-A1")
    last = _send(store, site, "temperature", [20])
    assert alarm_eval.check_clock(store, at=last + timedelta(minutes=119)) is None
    assert alarm_eval.check_clock(store, at=last + timedelta(minutes=121)) is not None
    offline = _alarms(store, alarm_kind="site_offline")
    assert len(offline) == 1 and offline[0].properties["site_id"] == site and offline[0].properties["status"] == "raised"
    assert offline[0].properties["last_at"] == last
    alarm_eval.check_clock(store, at=last + timedelta(hours=5))  # still silent: the same alarm, not another
    assert len(_alarms(store, site_id=site, alarm_kind="site_offline")) == 1
    _send(store, site, "temperature", [21], start=last + timedelta(hours=6))
    [alarm] = _alarms(store, site_id=site, alarm_kind="site_offline")
    assert alarm.properties["status"] == "resolved"
    # A site never heard from is watched from the first run of the clock (at +119 min): silent 2 h from there.
    water = _site(store, "W-A1")
    [alarm] = _alarms(store, site_id=water, alarm_kind="site_offline")
    assert alarm.properties["raised_at"] == last + timedelta(hours=5)
    assert alarm.properties["last_at"] == last + timedelta(minutes=119)


def test_a_duration_rule_raises_on_the_clock_when_no_reading_comes_to_do_it(store):
    site = _site(store, "T-A1")
    alarm_rules.create_rule(store, ADMIN, {"site_id": site, "metric": "temperature", "condition": "above",
                                           "threshold": 40, "for_seconds": 600})
    last = _send(store, site, "temperature", [45, 46])
    assert _alarms(store, site_id=site, alarm_kind="threshold") == []
    alarm_eval.check_clock(store, at=T + timedelta(minutes=9))
    assert _alarms(store, site_id=site, alarm_kind="threshold") == []
    alarm_eval.check_clock(store, at=T + timedelta(minutes=10))
    [alarm] = _alarms(store, site_id=site, alarm_kind="threshold")
    assert (alarm.properties["value"], alarm.properties["count"]) == (46, 2) and last < T + timedelta(minutes=10)


def test_two_processes_share_the_rule_state(store, request):
    """Two store objects on one database (two server processes): readings sent through each count together."""
    site = _site(store, "T-A1")
    alarm_rules.create_rule(store, ADMIN, {"site_id": site, "metric": "temperature", "condition": "above",
                                           "threshold": 40, "for_readings": 2})
    database = str(store.path) if store.kind == "embedded" else store.url
    other = open_store(database, store.catalog)
    other.open()
    try:
        _send(store, site, "temperature", [45])
        _send(other, site, "temperature", [46], start=T + timedelta(minutes=1))
        [alarm] = _alarms(store, site_id=site)
        assert alarm.properties["count"] == 2
        alarm_eval.check_clock(other, at=T + timedelta(hours=3))
        alarm_eval.check_clock(store, at=T + timedelta(hours=3))
        assert len(_alarms(store, site_id=site, alarm_kind="site_offline")) == 1
    finally:
        other.close()


def test_a_failed_batch_leaves_no_alarm_and_no_state(store, monkeypatch):
    site = _site(store, "T-A1")

    def broken(*args, **kwargs):
        raise RuntimeError("the store went away mid-batch")

    monkeypatch.setattr(alarm_eval, "repeated", broken)
    _send(store, site, "temperature", [60])
    with pytest.raises(RuntimeError):
        _send(store, site, "temperature", [61], start=T + timedelta(minutes=1))
    [alarm] = _alarms(store, site_id=site)
    assert alarm.properties["count"] == 1  # the reading and its alarm update rolled back together
    assert store.count_rows("alarm_timeline", {"alarm_id": alarm.id}) == 1


def test_batches_sent_at_once_through_four_processes_raise_one_alarm(store):
    """The first readings of a site, hot, sent concurrently through four store objects: the (site, rule) rows are
    created once, nobody deadlocks, and there is one open alarm."""
    site = _site(store, "T-A1")
    database = str(store.path) if store.kind == "embedded" else store.url
    others = [open_store(database, store.catalog) for _ in range(4)]
    for other in others:
        other.open()
    try:
        def send(k: int) -> None:
            _send(others[k], site, "temperature", [60 + k, 61 + k, 62 + k],
                  start=T + timedelta(seconds=k), step=timedelta(seconds=4))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(4)))
    finally:
        for other in others:
            other.close()
    [alarm] = _alarms(store, site_id=site, status="raised")
    assert 1 <= alarm.properties["count"] <= 12
    assert store.count_rows("alarm_state", {"site_id": site}) == 2  # the value rule and the offline rule
