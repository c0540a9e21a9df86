"""CQL2 temporal functions on both stores, checked against two independent evaluations of the same filters.

Patrols are intervals (started_at, ended_at; a running patrol has no end); every function is asked with
`INTERVAL(started_at, ended_at)` against literal intervals in both argument orders, in text and JSON.
The expected ids come from plain Python (Allen's interval relations, classified from the four end
points) and, where it can evaluate them, from the cql2 package's own evaluator (`Expr.matches`).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime

import cql2
import pytest
from shapely.geometry import LineString, Point

from geoserver.access import Scope
from geoserver.cql import parse_filter
from geoserver.errors import BadInput
from geoserver.features import Feature, FeatureQuery
from tests.conftest import STORE_KINDS, make_empty_store

EVERYTHING = Scope.everything()
LINE = LineString([(100.62, 32.81), (100.68, 32.85)])


def day(n: int) -> datetime:
    return datetime(2024, 3, n, tzinfo=UTC)


def iso(n: int | None) -> str:
    return ".." if n is None else f"2024-03-{n:02d}T00:00:00Z"


# Patrols: every proper interval over days 2, 3, 4, 6, 7, and three still running.
SPANS = [*itertools.combinations([2, 3, 4, 6, 7], 2), (3, None), (5, None), (7, None)]
PATROLS = {i: span for i, span in enumerate(SPANS, start=1)}
# Literal intervals meeting the patrols' ends in every way (None is '..').
LITERALS = [(3, 6), (2, 7), (4, 6), (1, 9), (6, 7), (None, 4), (4, None), (3, None), (None, 3)]
INSTANTS = [2, 3, 4, 5, 6, 7, 8]
OPS = ["t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby", "t_finishes",
       "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps", "t_startedby", "t_starts"]
INTERVAL_ONLY = {"t_contains", "t_during", "t_finishedby", "t_finishes", "t_meets", "t_metby", "t_overlappedby",
                 "t_overlaps", "t_startedby", "t_starts"}


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(request, catalog, tmp_path_factory, fresh_postgis_url):
    """Patrols and sites in each store (read-only here, so one per module)."""
    s = make_empty_store(request.param, catalog, tmp_path_factory.mktemp("temporal"), fresh_postgis_url)
    s.bulk_load("patrols", [
        Feature(fid, LINE, {"worker": f"w{fid}", "started_at": day(a), "ended_at": day(b) if b else None})
        for fid, (a, b) in PATROLS.items()])
    s.bulk_load("monitoring_sites", [
        Feature(n, Point(100.62, 32.81), {"site_code": f"S{n}", "kind": "camera", "installed_on": date(2024, 3, n)})
        for n in INSTANTS])
    yield s
    s.close()


# -- the independent evaluation ---------------------------------------------------------------------------


def _allen(a: tuple[float, float], b: tuple[float, float]) -> str:
    """Which of Allen's 13 relations holds between two proper intervals."""
    (a0, a1), (b0, b1) = a, b
    if a1 < b0:
        return "before"
    if a0 > b1:
        return "after"
    if a1 == b0:
        return "meets"
    if a0 == b1:
        return "metby"
    if (a0, a1) == (b0, b1):
        return "equals"
    if a0 == b0:
        return "starts" if a1 < b1 else "startedby"
    if a1 == b1:
        return "finishes" if a0 > b0 else "finishedby"
    if b0 < a0 and a1 < b1:
        return "during"
    if a0 < b0 and b1 < a1:
        return "contains"
    return "overlaps" if a0 < b0 else "overlappedby"


def _holds(op: str, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """A CQL2 temporal function as the relation(s) it names (W3C Time Ontology)."""
    name = op[2:]
    if name in ("disjoint", "intersects"):
        apart = a[1] < b[0] or a[0] > b[1]
        return apart if name == "disjoint" else not apart
    if a[0] == a[1] or b[0] == b[1]:  # an instant: before/after/equals read on its one point
        return {"before": a[1] < b[0], "after": a[0] > b[1], "equals": a == b}[name]
    return _allen(a, b) == name


def _t(n: int | None, side: int) -> float:
    return side * math.inf if n is None else day(n).timestamp()


def _patrol_interval(fid: int) -> tuple[float, float]:
    s, e = PATROLS[fid]
    return _t(s, -1), _t(e, +1)  # a running patrol's open end reads as unbounded


def _cql2_says(text: str, fid: int) -> bool | None:
    """The cql2 package's own evaluation, where it can decide (it cannot with '..' or a NULL end)."""
    s, e = PATROLS[fid]
    if e is None or ".." in text:
        return None
    item = {"type": "Feature", "properties": {"started_at": iso(s), "ended_at": iso(e)}}
    return cql2.parse_text(text).matches(item)


def _ids(store, layer: str, cql) -> list[int]:
    page = store.query(layer, FeatureQuery(filter=parse_filter(cql), limit=1000), EVERYTHING)
    return sorted(f.id for f in page.features)


def _both_forms(text: str) -> list:
    return [text, cql2.parse_text(text).to_json()]


# -- the tests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_interval_operands_built_from_two_properties(store, op):
    checked = 0
    for lit, patrol_first in itertools.product(LITERALS, (True, False)):
        literal = f"INTERVAL('{iso(lit[0])}', '{iso(lit[1])}')"
        prop = "INTERVAL(started_at, ended_at)"
        text = f"{op.upper()}({prop}, {literal})" if patrol_first else f"{op.upper()}({literal}, {prop})"
        b = (_t(lit[0], -1), _t(lit[1], +1))
        expected = sorted(fid for fid in PATROLS if (
            _holds(op, _patrol_interval(fid), b) if patrol_first else _holds(op, b, _patrol_interval(fid))))
        for fid in PATROLS:
            said = _cql2_says(text, fid)
            assert said is None or said == (fid in expected), (text, fid)
            checked += said is not None
        for form in _both_forms(text):
            assert _ids(store, "patrols", form) == expected, text
    assert checked > 0


@pytest.mark.parametrize("op", sorted(set(OPS) - INTERVAL_ONLY))
def test_instants_with_the_functions_that_take_them(store, op):
    for n, lit in itertools.product(INSTANTS, LITERALS):
        for literal, b in ((f"TIMESTAMP('{iso(n)}')", (_t(n, -1), _t(n, +1))),
                           (f"INTERVAL('{iso(lit[0])}', '{iso(lit[1])}')", (_t(lit[0], -1), _t(lit[1], +1)))):
            text = f"{op.upper()}(started_at, {literal})"
            expected = sorted(fid for fid in PATROLS if _holds(op, (_patrol_interval(fid)[0],) * 2, b))
            for form in _both_forms(text):
                assert _ids(store, "patrols", form) == expected, text


@pytest.mark.parametrize("op", sorted(INTERVAL_ONLY))
@pytest.mark.parametrize("first, second", [
    ("reported_at", "INTERVAL('2024-03-01T00:00:00Z', '2024-03-05T00:00:00Z')"),
    ("INTERVAL('2024-03-01T00:00:00Z', '2024-03-05T00:00:00Z')", "TIMESTAMP('2024-03-02T00:00:00Z')"),
    ("started_at", "ended_at"),
])
def test_an_instant_where_cql2_wants_an_interval_is_a_client_error(store, op, first, second):
    text = f"{op.upper()}({first}, {second})"
    for form in _both_forms(text):
        with pytest.raises(BadInput) as err:
            _ids(store, "events" if "reported_at" in text else "patrols", form)
        assert err.value.parameter == "filter" and "interval" in err.value.message.lower()


def test_a_running_patrol_is_still_going(store):
    running = sorted(fid for fid, (_, e) in PATROLS.items() if e is None)
    assert _ids(store, "patrols", "T_FINISHES(INTERVAL(started_at, ended_at), INTERVAL('2024-03-01T00:00:00Z', '..'))") \
        == running
    assert _ids(store, "patrols", "T_EQUALS(INTERVAL(started_at, ended_at), INTERVAL('2024-03-03T00:00:00Z', '..'))") \
        == [fid for fid in running if PATROLS[fid][0] == 3]
    assert _ids(store, "patrols", "T_AFTER(ended_at, TIMESTAMP('2024-03-01T00:00:00Z'))") \
        == sorted(fid for fid, (_, e) in PATROLS.items() if e is not None)  # an instant that is NULL: unknown
    assert _ids(store, "patrols", "NOT T_AFTER(ended_at, TIMESTAMP('2024-03-09T00:00:00Z'))") \
        == sorted(fid for fid, (_, e) in PATROLS.items() if e is not None)


def test_two_instant_properties_compare_on_each_feature(store):
    assert _ids(store, "patrols", "T_BEFORE(started_at, ended_at)") \
        == sorted(fid for fid, (_, e) in PATROLS.items() if e is not None)
    assert _ids(store, "patrols", "T_EQUALS(started_at, started_at)") == sorted(PATROLS)


@pytest.mark.parametrize("text, expected", [
    ("T_AFTER(installed_on, DATE('2024-03-05'))", [6, 7, 8]),
    ("T_INTERSECTS(installed_on, INTERVAL('2024-03-03', '2024-03-05'))", [3, 4, 5]),
    ("T_DURING(INTERVAL(installed_on, installed_on), INTERVAL('2024-03-02', '2024-03-05'))", [3, 4]),
    ("T_DISJOINT(installed_on, INTERVAL('..', '2024-03-06'))", [7, 8]),
])
def test_dates_compare_as_dates(store, text, expected):
    for form in _both_forms(text):
        assert _ids(store, "monitoring_sites", form) == expected


@pytest.mark.parametrize("text", ["T_AFTER(installed_on, id)", "T_DURING(INTERVAL(site_code, installed_on), "
                                  "INTERVAL('2024-03-02', '2024-03-05'))", "T_AFTER(installed_on, 'yesterday')"])
def test_a_temporal_function_on_something_else_is_refused(store, text):
    with pytest.raises(BadInput) as err:
        _ids(store, "monitoring_sites", text)
    assert err.value.parameter == "filter"
