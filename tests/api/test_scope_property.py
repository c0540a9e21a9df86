"""Property test: random principals x random queries never return a feature outside the principal's scope."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoserver import crs
from tests.api.conftest import login

USERS = ["leader-A", "leader-B", "worker-A1", "dept-religion", "external", None]
COLLECTIONS = ["events", "grids", "temples", "townships"]
ALLOWED = {"leader-A": {"A"}, "leader-B": {"B"}, "worker-A1": {"A"}, "dept-religion": {"A", "B"},
           "external": {"A", "B"}, None: {"A", "B"}}
FILTERS = st.sampled_from([
    None, "township_code = 'B'", "township_code = 'A' OR 1 = 1", "NOT (township_code = 'A')",
    "township_code <> 'X'", "1 = 1", "NOT (1 = 0)", "township_code IN ('A', 'B')",
    json.dumps({"op": "or", "args": [{"op": "=", "args": [{"property": "township_code"}, "B"]}, True]}),
])
@pytest.fixture(scope="module")
def tokens(client):
    """Headers of each principal (anonymous: none)."""
    return {u: (login(client, u) if u else {}) for u in USERS}


coord = st.floats(min_value=99.5, max_value=101.5, allow_nan=False)


@st.composite
def queries(draw):
    q = {"limit": str(draw(st.integers(1, 30))), "offset": str(draw(st.integers(0, 25)))}
    if draw(st.booleans()):
        x0, x1 = sorted([draw(coord), draw(coord)])
        q["bbox"] = f"{x0},32.9,{x1},33.6"
    f = draw(FILTERS)
    if f:
        q["filter"] = f
    if draw(st.booleans()):
        q["crs"] = draw(st.sampled_from([crs.EPSG_4326, crs.EPSG_3857, crs.EPSG_4490]))
    return q


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=st.sampled_from(USERS), collection=st.sampled_from(COLLECTIONS), query=queries())
def test_no_feature_outside_scope(client, tokens, user, collection, query):
    r = client.get(f"/collections/{collection}/items", params=query, headers=tokens[user])
    if r.status_code == 404:  # the collection does not exist for this caller
        return
    assert r.status_code == 200, r.text
    body = r.json()
    codes = {f["properties"]["township_code"] for f in body["features"]}
    public = collection == "townships"
    assert public or codes <= ALLOWED[user]
    assert body["numberReturned"] <= body["numberMatched"] or body["numberReturned"] == 0

