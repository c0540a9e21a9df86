"""Readings in (数据接入): a batch of sensor readings checked one by one; the good ones stored in the `readings`
layer at their site's point (keyed by its township and grid), the bad ones kept in `rejected_readings` with
the reason, all in one transaction. Nothing sent is silently dropped.

HTTP and MQTT both come through `ingest`; a caller sees a report line per reading, in order. The alarm rules are
evaluated on the stored readings in the same transaction (layers/alarm_eval.py): a reading and the alarm it
raises commit together or not at all. A reading's natural key is (site, metric, observed_at): one sent again
(an HTTP retry, an MQTT redelivery) is reported as a `duplicate` of the stored one and neither stored nor
evaluated twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geoserver.access import Principal, Scope, ingest_scope, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden
from geoserver.features import MAX_LIMIT, Feature, FeatureQuery
from geoserver.store import Store
from layers import alarm_eval
from layers.sites import METRICS

LAYER = "readings"
SITES = "monitoring_sites"
REJECTED = "rejected_readings"
MAX_BATCH = 1000
SOURCES = ("http", "mqtt")
FIELDS = ("site_id", "metric", "value", "unit", "observed_at")
# A reading from further ahead than a clock can drift, or older than a device buffers, is not believed.
MAX_AHEAD = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
MAX_ABS_VALUE = 1e12
MAX_KEPT_JSON = 2000
# Values per IN list when looking up stored keys (a filter takes at most 1,000 conditions).
KEY_CHUNK = 400
# A transaction that fails on a constraint is retried (two writers of one key: the insert skips the loser's).
WRITE_ATTEMPTS = 3

Key = tuple[int, str, datetime]


@dataclass(frozen=True)
class Rejection(Exception):
    """Why one reading was refused and which field is at fault."""

    reason: str
    field: str | None = None


@dataclass(frozen=True)
class Refused:
    """An item refused before it could be read as a reading (a message that is not JSON, came on a wrong
    topic, or is too large): `ingest` keeps it in rejected_readings with its reason, like a bad reading."""

    raw: Any
    reason: str
    field: str | None = None
    site_id: int | None = None


@dataclass
class Report:
    """The outcome of a batch: one line per reading, in the order sent."""

    lines: list[dict[str, Any]]

    @property
    def accepted(self) -> int:
        """How many readings were stored."""
        return sum(1 for line in self.lines if line["status"] == "accepted")

    @property
    def rejected(self) -> int:
        """How many readings were refused."""
        return sum(1 for line in self.lines if line["status"] == "rejected")

    @property
    def duplicates(self) -> int:
        """How many readings were already stored (sent before, or twice in the batch)."""
        return sum(1 for line in self.lines if line["status"] == "duplicate")

    def to_json(self) -> dict[str, Any]:
        """The report as the API returns it."""
        return {"accepted": self.accepted, "rejected": self.rejected, "duplicates": self.duplicates,
                "results": self.lines}


def now() -> datetime:
    """The current time, cut to the millisecond as the stores keep it."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def batch_of(body: Any) -> list[Any]:
    """The list of readings in a request body (BadInput naming the field when the shape is wrong)."""
    if not isinstance(body, dict):
        raise BadInput('the body must be a JSON object {"readings": [...]}', parameter="body")
    unknown = sorted(set(body) - {"readings"})
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r}; the body holds only readings", parameter=unknown[0])
    readings = body.get("readings")
    if not isinstance(readings, list) or not readings:
        raise BadInput("readings must be a non-empty list of readings", parameter="readings")
    if len(readings) > MAX_BATCH:
        raise BadInput(f"readings: at most {MAX_BATCH} readings per batch; got {len(readings)}",
                       parameter="readings")
    return readings


def _site_id(raw: dict[str, Any]) -> int:
    value = raw.get("site_id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejection("site_id must be an integer site id", "site_id")
    if not 0 < value < 2**63:
        raise Rejection(f"unknown site {value}", "site_id")
    return value


def _value(raw: dict[str, Any], unit: str) -> float:
    value = raw.get("value")
    if unit == "bool" and isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejection("value must be a number", "value")
    try:
        number = float(value)
    except OverflowError:
        raise Rejection("value is out of range", "value") from None
    if not math.isfinite(number):
        raise Rejection("value must be a finite number", "value")
    if abs(number) > MAX_ABS_VALUE:
        raise Rejection(f"value is out of range (at most {MAX_ABS_VALUE:g} in size)", "value")
    return number


def _observed_at(raw: dict[str, Any], at: datetime) -> datetime:
    value = raw.get("observed_at")
    if not isinstance(value, str) or len(value) > 40:
        raise Rejection("observed_at must be an RFC 3339 date-time with a time zone", "observed_at")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Rejection("observed_at must be an RFC 3339 date-time with a time zone", "observed_at") from None
    if when.tzinfo is None:
        raise Rejection("observed_at must carry a time zone (Z or +08:00)", "observed_at")
    when = when.astimezone(UTC)
    if when > at + MAX_AHEAD:
        raise Rejection(f"observed_at {value} is in the future", "observed_at")
    if when < at - MAX_AGE:
        raise Rejection(f"observed_at {value} is older than {MAX_AGE.days} days", "observed_at")
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def check(raw: Any, site: Feature | None, at: datetime) -> dict[str, Any]:
    """The properties of a reading to store, or Rejection saying why not (site None: unknown to the caller)."""
    if not isinstance(raw, dict):
        raise Rejection("a reading must be a JSON object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise Rejection(f"unknown field {_clean(unknown[0], 64)!r}; fields: {', '.join(FIELDS)}",
                        _clean(unknown[0], 64))
    site_id = _site_id(raw)
    if site is None:
        raise Rejection(f"unknown site {site_id}", "site_id")
    kind = site.properties.get("kind")
    metrics = METRICS.get(kind, {})
    metric = raw.get("metric")
    if not isinstance(metric, str) or metric not in metrics:
        raise Rejection(f"unknown metric {str(metric)[:64]!r} for a {kind} site; metrics: "
                        f"{', '.join(metrics) or 'none'}", "metric")
    unit = raw.get("unit", metrics[metric])
    if unit != metrics[metric]:
        raise Rejection(f"wrong unit {str(unit)[:32]!r} for {metric}: send {metrics[metric]!r}", "unit")
    return {"site_id": site_id, "kind": kind, "metric": metric, "value": _value(raw, unit), "unit": unit,
            "observed_at": _observed_at(raw, at), "township_code": site.properties.get("township_code"),
            "grid_code": site.properties.get("grid_code")}


def _sites(store: Store, catalog: Catalog, principal: Principal, batch: Sequence[Any]) -> dict[int, Feature]:
    """The sites named in a batch that the caller may send readings for (another township's do not exist)."""
    ids = {r.get("site_id") for r in batch if isinstance(r, dict)}
    ids = sorted(i for i in ids if isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63)
    if not ids:
        return {}
    scope = scope_for(principal, catalog.get(SITES), "read")
    page = store.query(SITES, FeatureQuery(ids=tuple(ids), limit=len(ids), properties=(
        "kind", "township_code", "grid_code")), scope)
    return {f.id: f for f in page.features}


def _kept(raw: Any) -> Any:
    """The reading as sent, as both stores keep JSON: PostgreSQL's jsonb refuses NaN, Infinity and NUL, so a
    reading holding one (or a large one) is kept as its text instead."""
    try:
        text = json.dumps(raw, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(raw, ensure_ascii=False)
    else:
        if len(text) <= MAX_KEPT_JSON and "\\u0000" not in text:
            return raw
    return {"text": _clean(text.replace("\\u0000", ""), MAX_KEPT_JSON)}


def _clean(text: str, size: int) -> str:
    """Text cut to `size` characters, without NUL (no database keeps it in text)."""
    return text.replace("\x00", "")[:size]


def ingest(store: Store, catalog: Catalog, principal: Principal, batch: Sequence[Any], *, source: str = "http",
           at: datetime | None = None) -> Report:
    """Check and store a batch of readings in one transaction; returns a line per reading.

    A reading whose (site, metric, observed_at) is already stored, or comes twice in the batch, is a
    `duplicate` line naming the stored id. Items that are `Refused` are kept as rejected with their reason.
    Raises Forbidden when the caller may not send readings at all (a reading for a site outside the caller's
    townships is rejected as an unknown site, like one that does not exist).
    """
    write = ingest_scope(principal, catalog.get(LAYER))
    if write.townships == frozenset():
        raise Forbidden("you may not send readings", parameter="readings")
    at = at or now()
    sites = _sites(store, catalog, principal, batch)
    lines: list[dict[str, Any]] = []
    good: list[tuple[int, Feature]] = []
    bad: list[dict[str, Any]] = []
    for i, raw in enumerate(batch):
        if isinstance(raw, Refused):
            lines.append({"index": i, "status": "rejected", "reason": raw.reason, "field": raw.field})
            bad.append(_rejected_row(raw.raw, raw.reason, raw.field, raw.site_id, at, source, principal))
            continue
        sid = raw.get("site_id") if isinstance(raw, dict) else None
        site = sites.get(sid) if isinstance(sid, int) and not isinstance(sid, bool) else None
        try:
            props = check(raw, site, at)
            if not write.allows(props["township_code"]):
                raise Rejection(f"unknown site {props['site_id']}", "site_id")
        except Rejection as why:
            lines.append({"index": i, "status": "rejected", "reason": why.reason, "field": why.field})
            known = sid if isinstance(sid, int) and not isinstance(sid, bool) and 0 < sid < 2**63 else None
            bad.append(_rejected_row(raw, why.reason, why.field, known, at, source, principal))
            continue
        lines.append({"index": i, "status": "accepted"})
        good.append((len(lines) - 1, Feature(None, site.geometry, props)))
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with store.transaction(actor=principal.username):
                stored = _store_new(store, good, lines, source)
                for row in bad:
                    store.add_row(REJECTED, row)
                alarm_eval.on_readings(store, stored, at)
            break
        except Conflict:  # a constraint other than the natural key: look again
            if attempt == WRITE_ATTEMPTS - 1:
                raise
    return Report(lines)


def _rejected_row(raw: Any, reason: str, field: str | None, site_id: int | None, at: datetime, source: str,
                  principal: Principal) -> dict[str, Any]:
    metric = raw.get("metric") if isinstance(raw, dict) else None
    return {"received_at": at, "source": source, "actor": principal.username, "site_id": site_id,
            "metric": _clean(metric, 64) if isinstance(metric, str) else None,
            "reason": reason, "field": field, "reading": _kept(raw)}


def _key(props: dict[str, Any]) -> Key:
    return props["site_id"], props["metric"], props["observed_at"]


def _store_new(store: Store, good: list[tuple[int, Feature]], lines: list[dict[str, Any]],
               source: str) -> list[Feature]:
    """Store the good readings in one `INSERT … ON CONFLICT DO NOTHING` on the natural key (one summary
    change-log row per township, not one per reading); returns the stored ones. A reading whose key is stored
    already, or earlier in the batch, becomes a duplicate line naming the stored id (looked up only then)."""
    if not good:
        return []
    ids = store.append(LAYER, [f for _, f in good], Scope.everything(), unique=("site_id", "metric", "observed_at"),
                       summary={"source": source})
    stored: list[Feature] = []
    again: list[tuple[int, Key]] = []
    for (line, feature), fid in zip(good, ids, strict=True):
        if fid is None:
            again.append((line, _key(feature.properties)))
            lines[line] = {"index": lines[line]["index"], "status": "duplicate"}
        else:
            lines[line] = {"index": lines[line]["index"], "status": "accepted", "id": fid}
            stored.append(Feature(fid, feature.geometry, feature.properties))
    if again:
        found = _stored_keys(store, {key for _, key in again})
        for line, key in again:
            lines[line]["id"] = found.get(key)
    return stored


def _stored_keys(store: Store, keys: set[Key]) -> dict[Key, int]:
    """The stored readings among `keys`: key -> feature id (read inside the writing transaction)."""
    if not keys:
        return {}
    sites = sorted({k[0] for k in keys})
    times = sorted({k[2] for k in keys})
    found: dict[Key, int] = {}
    for s in range(0, len(sites), KEY_CHUNK):
        for t in range(0, len(times), KEY_CHUNK):
            where = {"op": "and", "args": [
                {"op": "in", "args": [{"property": "site_id"}, sites[s:s + KEY_CHUNK]]},
                {"op": "in", "args": [{"property": "observed_at"},
                                      [{"timestamp": x.isoformat()} for x in times[t:t + KEY_CHUNK]]]}]}
            offset = 0
            while True:
                page = store.query(LAYER, FeatureQuery(filter=where, properties=("site_id", "metric", "observed_at"),
                                                       limit=MAX_LIMIT, offset=offset, with_geometry=False),
                                   Scope.everything())
                for f in page.features:
                    key = _key(f.properties)
                    if key in keys:
                        found[key] = f.id
                offset += len(page.features)
                if not page.features or offset >= page.number_matched:
                    break
    return found


def rejected_summary(store: Store, catalog: Catalog, principal: Principal, *, limit: int = 50) -> dict[str, Any]:
    """How many readings were refused, by reason and source, and the latest ones (for whoever may send
    readings for every township: a refused reading may name no township)."""
    if not ingest_scope(principal, catalog.get(LAYER)).unrestricted:
        raise Forbidden("only those who may send readings for the whole county see refused ones",
                        parameter="Authorization")
    if not 0 <= limit <= 1000:
        raise BadInput("limit must be between 0 and 1000", parameter="limit")
    rows = store.rows(REJECTED, order_by=("-received_at",), limit=limit)
    total = store.count_rows(REJECTED)
    by_field = {f: n for f in FIELDS if (n := store.count_rows(REJECTED, {"field": f}))}
    if other := total - sum(by_field.values()):
        by_field["other"] = other  # not an object, or an unknown field
    by_source = {s: n for s in SOURCES if (n := store.count_rows(REJECTED, {"source": s}))}
    latest = [{k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
               for k, v in r.items()} for r in rows]
    return {"count": total, "by_field": by_field, "by_source": by_source, "latest": latest}
