"""Alarm rules are data (告警规则): per site kind, with per-site overrides. A rule raises when a site's value (or
its rate of change per minute) goes past a limit -- for N consecutive readings, or for a duration -- or when
the site sends nothing for a time, and clears at its own (hysteresis) limit. Admins write rules; operators read.

A rule with a `site_id` overrides the kind's rules of the same metric for that one site (a disabled override
silences them there); no_data rules are overridden only by no_data rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geoserver.access import Principal, Scope, may_manage_alarm_rules, may_read_alarm_rules
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound
from geoserver.store import Store
from layers.alarms import ALARM_LEVELS, THRESHOLDS
from layers.sites import METRICS, SITE_KINDS

TABLE = "alarm_rules"
STATE = "alarm_state"
CONDITIONS = ("above", "below", "outside", "rate_above", "rate_below", "no_data")
FIELDS = ("name", "site_kind", "site_id", "metric", "condition", "threshold", "clear", "band", "clear_band",
          "for_readings", "for_seconds", "severity", "auto_resolve", "enabled", "event_type")
MAX_LIMIT = 1e12  # as a reading's value (layers/ingest.py)
MAX_READINGS = 10_000
MAX_SECONDS = 30 * 86_400  # readings older than 30 days are refused; a longer wait would never end
MAX_NAME = 200


@dataclass(frozen=True)
class Rule:
    """A stored rule, as evaluation needs it: raise when x < low or x > high; clear when clear_low <= x <=
    clear_high (each bound may be absent)."""

    id: int
    site_kind: str
    site_id: int | None
    metric: str | None
    condition: str
    low: float | None
    high: float | None
    clear_low: float | None
    clear_high: float | None
    for_readings: int
    for_seconds: float | None
    severity: str
    auto_resolve: bool
    enabled: bool
    name: str
    event_type: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Rule:
        """The rule of a stored row."""
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})

    @property
    def no_data(self) -> bool:
        """True for a silence rule (evaluated on the wall clock)."""
        return self.condition == "no_data"

    @property
    def on_rate(self) -> bool:
        """True when the rule looks at the change per minute, not the value."""
        return self.condition.startswith("rate_")

    def beyond(self, x: float) -> bool:
        """True when x meets the raise condition."""
        return (self.low is not None and x < self.low) or (self.high is not None and x > self.high)

    def clears(self, x: float) -> bool:
        """True when x meets the clear condition."""
        return (self.clear_low is None or x >= self.clear_low) and (self.clear_high is None or x <= self.clear_high)

    def excess(self, x: float) -> float:
        """How far past the raise limit x lies (the peak is the value of greatest excess)."""
        return max(self.low - x if self.low is not None else -math.inf,
                   x - self.high if self.high is not None else -math.inf)

    def limit_crossed(self, x: float) -> float | None:
        """The limit x went past."""
        if self.high is not None and x > self.high:
            return self.high
        return self.low


def effective(rules: list[Rule], site_kind: str, site_id: int) -> list[Rule]:
    """The enabled rules that apply to one site: its kind's, except where a rule of its own overrides them."""
    own = {(r.metric, r.no_data) for r in rules if r.site_id == site_id and r.site_kind == site_kind}
    return [r for r in rules if r.enabled and r.site_kind == site_kind
            and (r.site_id == site_id or (r.site_id is None and (r.metric, r.no_data) not in own))]


def now() -> datetime:
    """The current time, cut to the millisecond as the stores keep it."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


# -- checking a rule sent by an admin ----------------------------------------------------------------------
def _number(body: dict[str, Any], name: str, value: Any = None) -> float:
    value = body.get(name) if value is None else value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{name} must be a number", parameter=name)
    try:
        number = float(value)
    except OverflowError:
        raise BadInput(f"{name} is out of range (at most {MAX_LIMIT:g} in size)", parameter=name) from None
    if not math.isfinite(number) or abs(number) > MAX_LIMIT:
        raise BadInput(f"{name} must be a finite number of at most {MAX_LIMIT:g} in size", parameter=name)
    return number


def _pair(body: dict[str, Any], name: str) -> tuple[float, float]:
    value = body.get(name)
    if not isinstance(value, list) or len(value) != 2:
        raise BadInput(f"{name} must be [low, high]", parameter=name)
    low, high = (_number(body, name, v) for v in value)
    if not low < high:
        raise BadInput(f"{name}: low must be less than high", parameter=name)
    return low, high


def _limits(body: dict[str, Any], condition: str) -> dict[str, float | None]:
    """low/high/clear_low/clear_high of a rule from threshold/clear (above, below, rate_*) or band/clear_band."""
    out: dict[str, float | None] = dict.fromkeys(("low", "high", "clear_low", "clear_high"))
    single = ("threshold", "clear")
    pair = ("band", "clear_band")
    wrong = [f for f in (pair + single if condition == "no_data" else pair if condition != "outside" else single)
             if body.get(f) is not None]
    if wrong:
        raise BadInput(f"{wrong[0]} does not apply to a {condition} rule", parameter=wrong[0])
    if condition == "no_data":
        return out
    if condition == "outside":
        out["low"], out["high"] = _pair(body, "band")
        out["clear_low"], out["clear_high"] = out["low"], out["high"]
        if body.get("clear_band") is not None:
            lo, hi = _pair(body, "clear_band")
            if lo < out["low"] or hi > out["high"]:
                raise BadInput("clear_band must lie within band", parameter="clear_band")
            out["clear_low"], out["clear_high"] = lo, hi
        return out
    if body.get("threshold") is None:
        raise BadInput(f"threshold is required for a {condition} rule", parameter="threshold")
    limit = _number(body, "threshold")
    clear = limit if body.get("clear") is None else _number(body, "clear")
    if condition in ("above", "rate_above"):
        if clear > limit:
            raise BadInput("clear must be at or below threshold for an above rule", parameter="clear")
        out["high"], out["clear_high"] = limit, clear
    else:
        if clear < limit:
            raise BadInput("clear must be at or above threshold for a below rule", parameter="clear")
        out["low"], out["clear_low"] = limit, clear
    return out


def storable(text: str) -> bool:
    """True for text both stores keep: no NUL (PostgreSQL refuses it), no unpaired surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _text(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or not storable(value):
        raise BadInput(f"{name} must be non-empty text of at most {MAX_NAME} characters (no NUL)", parameter=name)
    return value.strip()


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadInput(f"{name} must be true or false", parameter=name)
    return value


def _site(store: Store, body: dict[str, Any]) -> tuple[int | None, str]:
    """The site of an override (which must exist) and the kind the rule is for."""
    site_id, kind = body.get("site_id"), body.get("site_kind")
    if site_id is not None:
        if isinstance(site_id, bool) or not isinstance(site_id, int) or not 0 < site_id < 2**63:
            raise BadInput("site_id must be the id of a monitoring site", parameter="site_id")
        try:
            site = store.get("monitoring_sites", site_id, Scope.everything())
        except NotFound:
            raise BadInput(f"site_id: no monitoring site {site_id}", parameter="site_id") from None
        site_kind = site.properties.get("kind")
        if kind is not None and kind != site_kind:
            raise BadInput(f"site_kind: site {site_id} is a {site_kind} site, not {str(kind)[:64]!r}",
                           parameter="site_kind")
        return site_id, site_kind
    if kind not in SITE_KINDS:
        raise BadInput(f"site_kind must be one of {', '.join(SITE_KINDS)}", parameter="site_kind")
    return None, kind


def checked(store: Store, body: Any) -> dict[str, Any]:
    """A rule row from a request body (BadInput naming the first bad field)."""
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadInput(f"unknown field {str(unknown[0])[:64]!r}; fields: {', '.join(FIELDS)}",
                       parameter=str(unknown[0])[:64])
    condition = body.get("condition")
    if condition not in CONDITIONS:
        raise BadInput(f"condition must be one of {', '.join(CONDITIONS)}", parameter="condition")
    site_id, kind = _site(store, body)
    metrics = METRICS[kind]
    metric = body.get("metric")
    if metric is None and condition != "no_data":
        raise BadInput(f"metric is required for a {condition} rule", parameter="metric")
    if metric is not None and metric not in metrics:
        raise BadInput(f"metric: {str(metric)[:64]!r} is not measured by {kind} sites; metrics: "
                       f"{', '.join(metrics)}", parameter="metric")
    for_readings = body.get("for_readings", 1)
    if isinstance(for_readings, bool) or not isinstance(for_readings, int) or not 1 <= for_readings <= MAX_READINGS:
        raise BadInput(f"for_readings must be a whole number from 1 to {MAX_READINGS}", parameter="for_readings")
    for_seconds = None
    if body.get("for_seconds") is not None:
        for_seconds = _number(body, "for_seconds")
        if not 0 < for_seconds <= MAX_SECONDS:
            raise BadInput(f"for_seconds must be above 0 and at most {MAX_SECONDS} (30 days)", parameter="for_seconds")
    if condition == "no_data" and for_seconds is None:
        raise BadInput("for_seconds (how long a silence raises) is required for a no_data rule",
                       parameter="for_seconds")
    if condition == "no_data" and for_readings != 1:
        raise BadInput("for_readings does not apply to a no_data rule", parameter="for_readings")
    severity = body.get("severity", "warning")
    if severity not in ALARM_LEVELS:
        raise BadInput(f"severity must be one of {', '.join(ALARM_LEVELS)}", parameter="severity")
    event_type = _text(body, "event_type")
    if event_type is not None and not store.rows("event_types", {"code": event_type}, limit=1):
        raise BadInput(f"event_type: no event type {event_type!r}", parameter="event_type")
    name = _text(body, "name") or f"{metric or 'data'} {condition}"
    return {"name": name, "site_kind": kind, "site_id": site_id, "metric": metric, "condition": condition,
            **_limits(body, condition), "for_readings": for_readings, "for_seconds": for_seconds,
            "severity": severity, "auto_resolve": _flag(body, "auto_resolve", True),
            "enabled": _flag(body, "enabled", True), "event_type": event_type}


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A rule as the API shows it (threshold/clear or band/clear_band, as its condition has them)."""
    out = {k: row[k] for k in ("id", "name", "site_kind", "site_id", "metric", "condition")}
    c = row["condition"]
    if c == "outside":
        out["band"] = [row["low"], row["high"]]
        out["clear_band"] = [row["clear_low"], row["clear_high"]]
    elif c in ("above", "rate_above"):
        out["threshold"], out["clear"] = row["high"], row["clear_high"]
    elif c in ("below", "rate_below"):
        out["threshold"], out["clear"] = row["low"], row["clear_low"]
    out.update({k: row[k] for k in ("for_readings", "for_seconds", "severity", "auto_resolve", "enabled",
                                    "event_type")})
    out["updated_at"] = row["updated_at"].isoformat().replace("+00:00", "Z")
    return out


# -- reading and writing rules -----------------------------------------------------------------------------
def _reader(principal: Principal) -> None:
    if not may_read_alarm_rules(principal):
        raise Forbidden("only operators and admins see the alarm rules", parameter="Authorization")


def _admin(principal: Principal) -> None:
    if not may_manage_alarm_rules(principal):
        raise Forbidden("only an admin manages alarm rules", parameter="Authorization")


def _rule_row(store: Store, rule_id: int, *, for_update: bool = False) -> dict[str, Any]:
    found = store.rows(TABLE, {"id": rule_id}, limit=1, for_update=for_update)
    if not found:
        raise NotFound(f"no alarm rule {rule_id}", parameter="ruleId")
    return found[0]


def list_rules(store: Store, principal: Principal, *, site_kind: str | None = None, site_id: int | None = None,
               metric: str | None = None) -> list[dict[str, Any]]:
    """The rules, by kind, site and id; optionally only those of one kind, site or metric."""
    _reader(principal)
    where: dict[str, Any] = {}
    if site_kind is not None:
        if site_kind not in SITE_KINDS:
            raise BadInput(f"site_kind must be one of {', '.join(SITE_KINDS)}", parameter="site_kind")
        where["site_kind"] = site_kind
    if site_id is not None:
        where["site_id"] = site_id
    if metric is not None:
        if not any(metric in m for m in METRICS.values()):
            raise BadInput(f"metric: {metric[:64]!r} is not a metric of any site kind", parameter="metric")
        where["metric"] = metric
    return [public(r) for r in store.rows(TABLE, where, order_by=("site_kind", "site_id", "metric"))]


def get_rule(store: Store, principal: Principal, rule_id: int) -> dict[str, Any]:
    """One rule; NotFound naming it."""
    _reader(principal)
    return public(_rule_row(store, rule_id))


def create_rule(store: Store, principal: Principal, body: Any) -> dict[str, Any]:
    """Add a rule (admins)."""
    _admin(principal)
    with store.transaction(actor=principal.username):
        row = checked(store, body)
        return public(store.add_row(TABLE, {**row, "updated_at": now()}))


def replace_rule(store: Store, principal: Principal, rule_id: int, body: Any) -> dict[str, Any]:
    """Replace a rule (admins). Its sites' counting starts afresh; an open alarm stays open under it."""
    _admin(principal)
    with store.transaction(actor=principal.username):
        _rule_row(store, rule_id, for_update=True)
        row = checked(store, body)
        store.update_rows(TABLE, {"id": rule_id}, {**row, "updated_at": now()})
        store.update_rows(STATE, {"rule_id": rule_id}, {"count": 0, "crossed_at": None})
        return public(_rule_row(store, rule_id))


def delete_rule(store: Store, principal: Principal, rule_id: int) -> None:
    """Delete a rule (admins); one with open alarms is a Conflict (resolve them, or disable the rule)."""
    _admin(principal)
    with store.transaction(actor=principal.username):
        _rule_row(store, rule_id, for_update=True)
        open_alarms = [s["alarm_id"] for s in store.rows(STATE, {"rule_id": rule_id}) if s["alarm_id"]]
        if open_alarms:
            raise Conflict(f"alarm rule {rule_id} has {len(open_alarms)} open alarm(s) (e.g. {open_alarms[0]}); "
                           f"resolve them, or disable the rule (PUT with \"enabled\": false)", parameter="ruleId")
        store.delete_rows(STATE, {"rule_id": rule_id})
        store.delete_rows(TABLE, {"id": rule_id})


# -- what a county starts with (`onemap db upgrade` adds them to an empty table) ---------------------------
HYSTERESIS = 0.1  # a seeded rule clears 10% inside its limit (of the limit, or of a band's width)
OFFLINE_SECONDS = 7200.0  # the sample's sites send hourly: two missed readings mean offline


def default_rules() -> list[dict[str, Any]]:
    """The seeded rules: every limit of layers/alarms.py THRESHOLDS for each kind measuring it (a floor and a
    ceiling of one metric make a band), and a no_data rule per kind."""
    out = []
    for kind in SITE_KINDS:
        for metric in METRICS[kind]:
            limits = THRESHOLDS.get(metric, ())
            if not limits:
                continue
            level = max((lv for *_, lv in limits), key=ALARM_LEVELS.index)
            lows = [v for op, v, _ in limits if op == "<"]
            highs = [v for op, v, _ in limits if op == ">"]
            rule = {"name": f"{metric} default", "site_kind": kind, "metric": metric, "severity": level}
            if lows and highs:
                low, high = max(lows), min(highs)
                pad = (high - low) * HYSTERESIS
                rule.update(condition="outside", band=[low, high], clear_band=[round(low + pad, 6), round(high - pad, 6)])
            elif highs:
                rule.update(condition="above", threshold=min(highs), clear=round(min(highs) * (1 - HYSTERESIS), 6))
            else:
                rule.update(condition="below", threshold=max(lows), clear=round(max(lows) * (1 + HYSTERESIS), 6))
            out.append(rule)
        out.append({"name": "offline", "site_kind": kind, "condition": "no_data", "for_seconds": OFFLINE_SECONDS,
                    "severity": "warning"})
    return out


def seed_defaults(store: Store) -> int:
    """Add the default rules to an empty table; returns how many were added."""
    with store.transaction(actor="onemap"):
        if store.count_rows(TABLE):
            return 0
        rules = default_rules()
        for body in rules:
            store.add_row(TABLE, {**checked(store, body), "updated_at": now()})
    return len(rules)
