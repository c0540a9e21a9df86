"""The workflow routes (dispatch, tasks, alarms, readings, patrols, devices, statistics, heat maps) against the
inputs a careless or hostile client sends, on both stores: ids that overflow or are not numbers, bodies too
deep, too large, of the wrong type or not JSON, absurd dates, another township's records. Each is a 4xx
problem+json naming what was wrong, and nothing is written.
"""

from __future__ import annotations

import functools
import gzip

import pytest

from tests.api.conftest import login

PROBLEM = "application/problem+json"

# Every route that takes a record id in its path: (method, path template, the parameter its 404 names).
ID_ROUTES = [
    ("POST", "/events/{}/actions/accept", "eventId"),
    ("GET", "/events/{}/timeline", "eventId"),
    ("GET", "/events/{}/attachments", "eventId"),
    ("POST", "/alarms/{}/actions/ack", "alarmId"),
    ("GET", "/alarms/{}/timeline", "alarmId"),
    ("GET", "/alarm-rules/{}", "ruleId"),
    ("POST", "/patrols/{}/stop", "patrolId"),
    ("POST", "/patrols/{}/points", "patrolId"),
    ("GET", "/tasks/{}", "taskId"),
    ("GET", "/tasks/{}/timeline", "taskId"),
    ("POST", "/tasks/{}/actions/start", "taskId"),
    ("DELETE", "/devices/{}", "deviceId"),
]
BAD_IDS = [str(2**70), str(2**63), "-1", "0", "1e3", "abc", "9" * 500]

# Every route that takes a JSON body, with a body it would otherwise accept the shape of.
BODY_ROUTES = [
    ("POST", "/events/1/actions/accept"),
    ("POST", "/event-types"),
    ("POST", "/alarm-rules"),
    ("POST", "/alarms/1/actions/ack"),
    ("POST", "/readings"),
    ("POST", "/patrols"),
    ("POST", "/patrols/1/points"),
    ("POST", "/devices"),
    ("POST", "/tasks"),
]


@pytest.fixture(scope="module")
def admin(client):
    return login(client, "admin")


def _problem(r, statuses: tuple[int, ...], parameter: str | None = None) -> dict:
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["status"] == r.status_code
    if parameter is not None:
        assert body.get("parameter") == parameter, body
    return body


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b'{"note": "' + b"x" * (64 * 2**20) + b'"}', 9)  # 64 MB of JSON in ~64 kB


def _events(client, h) -> int:
    return client.get("/collections/events/items", params={"limit": 1}, headers=h).json()["numberMatched"]


@pytest.mark.parametrize("method, template, parameter", ID_ROUTES, ids=[f"{m} {t}" for m, t, _ in ID_ROUTES])
@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda v: v[:12])
def test_an_id_that_overflows_or_is_no_number_is_404_naming_it(client, admin, method, template, parameter, bad):
    json_body = {} if method == "POST" else None
    r = client.request(method, template.format(bad), json=json_body, headers=admin)
    body = _problem(r, (404,), parameter)
    assert len(body.get("detail", "")) < 300  # a 500-digit id is not echoed whole


@pytest.mark.parametrize("method, path", BODY_ROUTES, ids=[p for _, p in BODY_ROUTES])
@pytest.mark.parametrize("text", [
    "[" * 5000 + "]" * 5000,
    '{"a": ' * 200 + "1" + "}" * 200,
    "{not json",
    b'{"note": "\xff"}',
], ids=["deep-array", "deep-object", "not-json", "not-utf8"])
def test_a_body_too_deep_or_not_json_is_400_naming_the_body(client, admin, method, path, text):
    before = _events(client, admin)
    r = client.request(method, path, content=text, headers={**admin, "Content-Type": "application/json"})
    _problem(r, (400,), "body")
    assert _events(client, admin) == before


@pytest.mark.parametrize("method, path", BODY_ROUTES, ids=[p for _, p in BODY_ROUTES])
def test_a_body_of_another_type_is_refused_naming_the_content_type(client, admin, method, path):
    r = client.request(method, path, content=b"<event/>", headers={**admin, "Content-Type": "application/xml"})
    _problem(r, (400, 415), "Content-Type")


@pytest.mark.parametrize("method, path", BODY_ROUTES, ids=[p for _, p in BODY_ROUTES])
def test_a_gzip_bomb_is_refused_without_inflating_it_whole(client, admin, method, path):
    bomb = _bomb()
    r = client.request(method, path, content=bomb,
                       headers={**admin, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    _problem(r, (400, 413), "body")


@pytest.mark.parametrize("path, params, parameter", [
    ("/stats/events", {"datetime": "99999-01-01T00:00:00Z/.."}, "datetime"),
    ("/stats/events", {"datetime": "2024-13-45T00:00:00Z"}, "datetime"),
    ("/stats/events", {"group_by": "password"}, "group_by"),
    ("/stats/alarms", {"datetime": "0000-00-00T00:00:00Z/.."}, "datetime"),
    ("/stats/alarms", {"group_by": "x" * 5000}, "group_by"),
    ("/stats/patrols", {"day": "99999-01-01"}, "day"),
    ("/stats/patrols", {"day": "2024-02-30"}, "day"),
    ("/heatmap", {"layer": "events", "datetime": "99999-01-01T00:00:00Z"}, "datetime"),
    ("/heatmap", {"layer": "events", "resolution": str(2**70)}, "resolution"),
    ("/heatmap", {"layer": "events", "resolution": "-1"}, "resolution"),
    ("/heatmap", {"layer": "users"}, "layer"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_absurd_dates_and_numbers_in_queries_are_400_naming_them(client, admin, path, params, parameter):
    statuses = (404,) if parameter == "layer" else (400,)  # a layer we do not have is not found
    _problem(client.get(path, params=params, headers=admin), statuses, parameter)


def test_another_townships_records_do_not_exist_for_a_leader(client, admin):
    """Leader A acting on township B's event (and reading its timeline) gets the same 404 as for an id that
    does not exist, and the event is unchanged."""
    b_event = client.get("/collections/events/items", params={"limit": 1, "filter": "township_code='B'"},
                         headers=admin).json()["features"][0]
    leader = login(client, "leader-A")
    for method, path in (("GET", f"/events/{b_event['id']}/timeline"),
                         ("POST", f"/events/{b_event['id']}/actions/accept"),
                         ("GET", f"/events/{b_event['id']}/attachments"),
                         ("GET", f"/collections/events/items/{b_event['id']}")):
        r = client.request(method, path, json={} if method == "POST" else None, headers=leader)
        _problem(r, (404,))
        missing = client.request(method, path.replace(str(b_event["id"]), str(2**62)),
                                 json={} if method == "POST" else None, headers=leader)
        assert missing.status_code == 404
        assert r.json()["title"] == missing.json()["title"]
    after = client.get(f"/collections/events/items/{b_event['id']}", headers=admin).json()
    assert after["properties"]["status"] == b_event["properties"]["status"]
