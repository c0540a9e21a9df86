"""Alarm rule evaluation (告警判定): value rules on every stored reading, in the readings' own transaction (HTTP
and MQTT alike, through layers/ingest.py); duration and no-data rules on the wall clock, by a background job,
so a sensor that goes silent still raises its alarm on time.

Each (site, rule)'s state -- consecutive readings past the limit, since when, the last reading, the open alarm
-- is a row of `alarm_state`, locked while it is evaluated, so two server processes agree and never raise two
alarms for one (site, rule). A reading older than the last one evaluated for a rule is stored but does not move
its state (rules follow the newest reading).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from geoserver.access import Scope
from geoserver.features import Feature, FeatureQuery
from geoserver.jobs import Job
from geoserver.store import Store
from layers.alarm_lifecycle import (
    LAYER,
    TIMELINE,
    auto_resolved,
    new_alarm,
    raise_alarm,
    raise_timeline,
    repeated,
)
from layers.alarm_rules import STATE, TABLE, Rule, effective, now

INGEST_ACTOR = None  # the change log names the sender of the readings (the transaction's actor)
JOB = "alarm-clock"
JOB_ACTOR = f"job:{JOB}"
SITES = "monitoring_sites"
SITE_PROPS = ("kind", "name", "site_code", "township_code", "grid_code")
SITE_PAGE = 10_000


def _rules(store: Store, kinds: Sequence[str]) -> list[Rule]:
    return [Rule.of(r) for r in store.rows(TABLE, {"site_kind": sorted(set(kinds))})] if kinds else []


def _states(store: Store, pairs: list[tuple[int, int]], at: datetime) -> dict[tuple[int, int], dict[str, Any]]:
    """The state rows of (site, rule) pairs: the missing ones created first, then all locked, each step in
    (site, rule) order, so two transactions on the same sites wait for each other instead of deadlocking."""
    if not pairs:
        return {}
    where = {"site_id": sorted({s for s, _ in pairs}), "rule_id": sorted({r for _, r in pairs})}
    have = {(r["site_id"], r["rule_id"]) for r in store.rows(STATE, where)}
    store.add_rows(STATE, [{"site_id": site_id, "rule_id": rule_id, "count": 0, "watched_at": at}
                           for site_id, rule_id in sorted(set(pairs) - have)], unless=("site_id", "rule_id"))
    return {(r["site_id"], r["rule_id"]): r
            for r in store.rows(STATE, where, order_by=("site_id", "rule_id"), for_update=True)}


@dataclass
class _Alarm:
    """An alarm as the batch leaves it: one already stored (`id`) or one raised by this batch (id None until
    it is inserted), its properties as they now are, what changed and the timeline rows to append."""

    id: int | None
    props: dict[str, Any]
    geometry: Any = None
    changes: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def change(self, changes: dict[str, Any], row: dict[str, Any]) -> None:
        self.props.update(changes)
        self.changes.update(changes)
        self.timeline.append(row)


@dataclass
class _Run:
    """One (site, rule) while a batch is evaluated: its state, its open alarm and the repeats not yet folded
    into it."""

    rule: Rule
    state: dict[str, Any]
    alarm: _Alarm | None = None
    repeats: list[tuple[float, datetime]] = field(default_factory=list)
    changed: bool = False

    def flush(self) -> None:
        if self.repeats and self.alarm is not None:
            self.alarm.change(*repeated(self.rule, self.alarm.props, self.repeats))
        self.repeats = []


@dataclass
class _Batch:
    """What a batch of readings does to the alarms, written at the end in a few set-based statements."""

    sites: dict[int, dict[str, Any]]
    stored: dict[int, _Alarm]
    raised: list[_Alarm] = field(default_factory=list)

    def write(self, store: Store, runs: list[_Run], actor: str | None) -> None:
        if self.raised:
            inserted = store.insert(LAYER, [Feature(None, a.geometry, a.props) for a in self.raised],
                                    Scope.everything())
            for alarm, feature in zip(self.raised, inserted, strict=True):
                alarm.id = feature.id
        touched = [a for a in self.stored.values() if a.changes]
        if touched:
            store.update_many(LAYER, [Feature(a.id, None, a.changes) for a in touched], Scope.everything())
        rows = [{"alarm_id": a.id, "actor": actor, **row} for a in (*self.raised, *touched) for row in a.timeline]
        store.add_rows(TIMELINE, sorted(rows, key=lambda r: r["at"]))
        states: dict[int, dict[str, Any]] = {}
        for run in runs:
            if run.changed:
                run.state["alarm_id"] = run.alarm.id if run.alarm is not None else None
                states[run.state["id"]] = {k: run.state[k] for k in STATE_COLUMNS}
        store.update_rows_by_id(STATE, states)


STATE_COLUMNS = ("count", "crossed_at", "last_value", "last_at", "alarm_id")


def on_readings(store: Store, readings: Sequence[Feature], at: datetime | None = None) -> int:
    """Evaluate the value and no-data rules of just-stored readings (inside their transaction); returns how many
    alarms were raised. Each reading's properties: site_id, kind, metric, value, observed_at, township/grid.

    Set-based: the rules, the states (locked), the open alarms and the sites' names are read in a statement
    each; the rules run in memory; then the new alarms are inserted, the changed ones patched, the timeline
    rows and the states written, each in one batch of statements."""
    at = at or now()
    by_site: dict[int, list[Feature]] = defaultdict(list)
    for r in readings:
        by_site[r.properties["site_id"]].append(r)
    rules = _rules(store, [r.properties["kind"] for r in readings])
    if not rules:
        return 0
    work: list[tuple[int, Rule]] = []
    for site_id, rs in by_site.items():
        metrics = {r.properties["metric"] for r in rs}
        work += [(site_id, rule) for rule in effective(rules, rs[0].properties["kind"], site_id)
                 if rule.metric is None or rule.metric in metrics]
    states = _states(store, [(s, r.id) for s, r in work], at)
    open_ids = sorted({st["alarm_id"] for st in states.values() if st["alarm_id"]})
    quiet = sorted({s for s, r in work if not states[(s, r.id)]["alarm_id"] and not r.no_data})
    batch = _Batch(_site_names(store, quiet), {a.id: _Alarm(a.id, dict(a.properties))
                                                for a in _features(store, LAYER, open_ids)})
    runs: list[_Run] = []
    raised = 0
    for site_id, rule in sorted(work, key=lambda w: (w[0], w[1].id)):
        state = dict(states[(site_id, rule.id)])
        run = _Run(rule, state, batch.stored.get(state["alarm_id"]) if state["alarm_id"] else None)
        site_readings = sorted((r for r in by_site[site_id] if rule.metric in (None, r.properties["metric"])),
                               key=lambda r: r.properties["observed_at"])
        for reading in site_readings:
            raised += _step(batch, run, reading)
        run.flush()
        runs.append(run)
    batch.write(store, runs, INGEST_ACTOR)
    return raised


def _features(store: Store, layer: str, ids: list[int]) -> list[Feature]:
    """The features of these ids (a query per 1,000)."""
    out: list[Feature] = []
    for i in range(0, len(ids), 1000):
        chunk = tuple(ids[i:i + 1000])
        out += store.query(layer, FeatureQuery(ids=chunk, limit=len(chunk), with_geometry=False),
                           Scope.everything()).features
    return out


def _site_names(store: Store, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Name and code of the sites that may raise an alarm in this batch (one that is gone: not here)."""
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(ids), 1000):
        chunk = tuple(ids[i:i + 1000])
        page = store.query(SITES, FeatureQuery(ids=chunk, limit=len(chunk), properties=("name", "site_code"),
                                               with_geometry=False), Scope.everything())
        out.update({f.id: {"name": f.properties.get("name"), "site_code": f.properties.get("site_code")}
                    for f in page.features})
    return out


def _site_of(batch: _Batch, reading: Feature) -> dict[str, Any]:
    p = reading.properties
    # deleted meanwhile: the alarm is raised anyway, without the name
    return {"id": p["site_id"], "kind": p.get("kind"), "township_code": p.get("township_code"),
            "grid_code": p.get("grid_code"), **batch.sites.get(p["site_id"], {})}


def _step(batch: _Batch, run: _Run, reading: Feature) -> int:
    """One reading through one rule (in memory); returns 1 if it raised an alarm."""
    rule, state = run.rule, run.state
    value, when = float(reading.properties["value"]), reading.properties["observed_at"]
    last_at, last_value = state.get("last_at"), state.get("last_value")
    if last_at is not None and when <= last_at:
        return 0  # older than what the rule has seen
    run.changed = True
    state["last_at"], state["last_value"] = when, value
    if rule.no_data:  # data again: the silence is over
        if run.alarm is not None and rule.auto_resolve:
            _resolve(run, None, when)
        return 0
    x: float | None = value
    if rule.on_rate:
        minutes = (when - last_at).total_seconds() / 60 if last_at is not None else 0.0
        x = (value - last_value) / minutes if minutes > 0 and last_value is not None else None
    if x is None:
        return 0
    if rule.beyond(x):
        state["count"] += 1
        state["crossed_at"] = state.get("crossed_at") or when
        if run.alarm is not None:
            run.repeats.append((x, when))
            return 0
        if state["count"] >= rule.for_readings and _long_enough(rule, state["crossed_at"], when):
            props = new_alarm(rule, _site_of(batch, reading), x=x, count=state["count"], at=when)
            run.alarm = _Alarm(None, props, reading.geometry, timeline=[raise_timeline(rule, props, when)])
            batch.raised.append(run.alarm)
            return 1
        return 0
    state["count"], state["crossed_at"] = 0, None
    if run.alarm is not None and rule.auto_resolve and rule.clears(x):
        run.flush()
        _resolve(run, x, when)
    return 0


def _resolve(run: _Run, x: float | None, when: datetime) -> None:
    """The run's open alarm resolved by itself; the next crossing raises a new one."""
    done = auto_resolved(run.alarm.props, x, when)
    if done is not None:
        run.alarm.change(*done)
    run.alarm = None


def _long_enough(rule: Rule, since: datetime | None, when: datetime) -> bool:
    return rule.for_seconds is None or (since is not None and (when - since).total_seconds() >= rule.for_seconds)


# -- the wall clock ---------------------------------------------------------------------------------------
def check_clock(store: Store, at: datetime | None = None) -> str | None:
    """Raise what time alone raises: a site silent for its no_data rule's time, and a value past a duration
    rule's limit for long enough with no reading since. Each alarm in its own transaction, re-checked under the
    state's lock. Returns a summary, or None when nothing was raised."""
    at = at or now()
    rules = [Rule.of(r) for r in store.rows(TABLE, {"enabled": True})]
    clocked = [r for r in rules if r.no_data or r.for_seconds is not None]
    if not clocked:
        return None
    all_rules = [Rule.of(r) for r in store.rows(TABLE, {"site_kind": sorted({r.site_kind for r in clocked})})]
    sites = _sites(store, sorted({r.site_kind for r in clocked}))
    pairs = [(site, rule) for site in sites.values()
             for rule in effective(all_rules, site["kind"], site["id"]) if rule.no_data or rule.for_seconds is not None]
    known = {(s["site_id"], s["rule_id"]): s
             for s in store.rows(STATE, {"rule_id": sorted({r.id for _, r in pairs})})} if pairs else {}
    missing = [(site["id"], rule.id) for site, rule in pairs if rule.no_data and (site["id"], rule.id) not in known]
    if missing:  # the silence clock of a site never heard from starts now
        with store.transaction(actor=JOB_ACTOR):
            for site_id, rule_id in missing:
                store.add_row(STATE, {"site_id": site_id, "rule_id": rule_id, "count": 0, "watched_at": at},
                              unless=("site_id", "rule_id"))
    raised = 0
    for site, rule in pairs:
        state = known.get((site["id"], rule.id))
        if state is not None and _due(rule, state, at):
            raised += _raise_on_clock(store, rule, site, at)
    return f"{raised} alarms raised on the clock" if raised else None


def _due(rule: Rule, state: dict[str, Any], at: datetime) -> bool:
    if state["alarm_id"]:
        return False
    if rule.no_data:
        return (state.get("last_at") or state["watched_at"]) + timedelta(seconds=rule.for_seconds) <= at
    return (state["count"] >= rule.for_readings and state.get("crossed_at") is not None
            and _long_enough(rule, state["crossed_at"], at))


def _raise_on_clock(store: Store, rule: Rule, site: dict[str, Any], at: datetime) -> int:
    with store.transaction(actor=JOB_ACTOR):
        found = store.rows(STATE, {"site_id": site["id"], "rule_id": rule.id}, limit=1, for_update=True)
        if not found or not _due(rule, found[0], at):
            return 0  # a reading or another process got there first
        state = found[0]
        x = None if rule.no_data else state.get("last_value")
        silent = (state.get("last_at") or state["watched_at"]) if rule.no_data else None
        alarm = raise_alarm(store, rule, site, site["geometry"], x=x, count=max(1, state["count"]), at=at,
                            actor=JOB_ACTOR, silent_since=silent)
        store.update_rows(STATE, {"id": state["id"]}, {"alarm_id": alarm.id})
    return 1


def _sites(store: Store, kinds: list[str]) -> dict[int, dict[str, Any]]:
    """Every site of these kinds: id, kind, name, code, township, grid, point."""
    out: dict[int, dict[str, Any]] = {}
    query = FeatureQuery(filter={"op": "in", "args": [{"property": "kind"}, kinds]}, properties=SITE_PROPS,
                         limit=SITE_PAGE)
    while True:
        page = store.query(SITES, query, Scope.everything())
        for f in page.features:
            out[f.id] = {"id": f.id, "geometry": f.geometry, **{k: f.properties.get(k) for k in SITE_PROPS}}
        if len(page.features) < SITE_PAGE:
            return out
        query = FeatureQuery(filter=query.filter, properties=SITE_PROPS, limit=SITE_PAGE,
                             offset=query.offset + SITE_PAGE)


def clock_job(every: float = 15.0) -> Job:
    """The background job that raises silence and duration alarms on time (runs in one process at a time)."""
    return Job(JOB, every=every, run=lambda store: check_clock(store))
