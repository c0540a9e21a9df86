"""The dispatch centre's "done when", on both stores, over real HTTP: a grid worker's report walks to closure --
routed to its township, grid and team, a probable duplicate flagged and merged, accepted, dispatched to a
candidate, started, escalated automatically after its deadline (time moved forward, not slept), handled, sent
back, handled again, verified, closed -- and the timeline, the statistics, the live stream and the vector tiles
each say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import morecantile
import pytest

from api.app import create_app
from api.settings import Settings
from layers import dispatch, stats
from tests.api import county
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server
from tests.e2e.sse import SSEClient
from tests.tiles.mvt import decode

pytestmark = pytest.mark.e2e
SECRET = "scenario-test-secret-of-at-least-32-bytes"
GJ = {"Content-Type": "application/geo+json"}
HERE = (100.1, 33.15)  # township A, grid A1
NEAR = (100.1004, 33.1503)  # about 50 m away
TITLE = "scenario"


@pytest.fixture(scope="module", params=STORE_KINDS)
def server(request, catalog, tmp_path_factory, fresh_postgis_url):
    db = filled_database(request.param, catalog, tmp_path_factory.mktemp(f"scenario-{request.param}"),
                         fresh_postgis_url, county.fill)
    # No background jobs: the test moves time itself (check_deadlines(at=...)).
    app = create_app(Settings(database=db, secret=SECRET, stream_heartbeat_seconds=0.3, jobs=False))
    with live_server(app) as base:
        yield base, app


def _login(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/auth/token", data={"username": user, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _report(base: str, headers: dict, where: tuple[float, float], title: str) -> dict:
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(where)},
            "properties": {"title": title, "type": "road_damage", "priority": "high",
                           "reported_at": datetime.now(UTC).isoformat()}}
    r = httpx.post(f"{base}/collections/events/items", json=body, headers={**headers, **GJ})
    assert r.status_code == 201, r.text
    return r.json()


def _timeline(base: str, headers: dict, fid: int) -> list[dict]:
    r = httpx.get(f"{base}/events/{fid}/timeline", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["timeline"]


def _tile_status(base: str, headers: dict, fid: int) -> str | None:
    """The status the events tile at zoom 16 draws for the event."""
    tile = morecantile.tms.get("WebMercatorQuad").tile(*HERE, 16)
    r = httpx.get(f"{base}/collections/events/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}", headers=headers)
    assert r.status_code in (200, 204), r.text
    found = [f for f in decode(r.content).get("events", []) if f.get("id") == fid]
    return found[0]["properties"]["status"] if found else None


def _stats(base: str, headers: dict, group_by: str) -> dict:
    r = httpx.get(f"{base}/stats/events", params={"group_by": group_by, "filter": f"title LIKE '{TITLE}%'"},
                  headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


class Clock:
    """The server's clock in this test: real time plus however far the test has moved it."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        t = datetime.now(UTC) + self.ahead
        return t.replace(microsecond=t.microsecond // 1000 * 1000)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Moves the dispatch centre's time (the server runs in this process) instead of sleeping."""
    c = Clock()
    monkeypatch.setattr(dispatch, "now", c)
    monkeypatch.setattr(stats, "now", c)
    return c


def test_a_report_walks_to_closure_and_every_view_of_it_agrees(server, clock):
    base, app = server
    store = app.state.store
    admin, op = _login(base, "admin"), _login(base, "operator")
    leader, worker = _login(base, "leader-A"), _login(base, "worker-A1")
    team = {"bindings": [{"username": "worker-A1", "role": "full_time"}, {"username": "leader-A", "role": "leader"}]}
    assert httpx.put(f"{base}/grids/A1/bindings", json=team, headers=admin).status_code == 200
    stream = SSEClient(f"{base}/stream?layers=events,alarms", leader)
    try:
        assert stream.status == 200
        stream.next(kind="ready")

        # A grid worker reports: routed to township A, grid A1, its team as candidates, a deadline from its type.
        event = _report(base, worker, HERE, f"{TITLE}: road broken")
        fid, props = event["id"], event["properties"]
        assert (props["status"], props["township_code"], props["grid_code"]) == ("reported", "A", "A1")
        deadline = datetime.fromisoformat(props["deadline"].replace("Z", "+00:00"))
        reported = datetime.fromisoformat(props["reported_at"].replace("Z", "+00:00"))
        assert deadline - reported == timedelta(hours=72)  # road damage: three days
        route = _timeline(base, op, fid)[1]
        assert route["action"] == "route" and route["data"]["grid_code"] == "A1"
        candidates = [c["username"] for c in route["data"]["candidates"] if c["role"] != "leader"]
        assert candidates == ["worker-A1"]
        assert _tile_status(base, leader, fid) == "reported"

        # The same pothole reported again nearby: flagged, then merged into the first, linked both ways.
        again = _report(base, worker, NEAR, f"{TITLE}: same road")
        flags = [t for t in _timeline(base, op, again["id"]) if t["action"] == "probable-duplicate"]
        assert [f["data"]["candidates"] for f in flags] == [[fid]]
        r = httpx.post(f"{base}/events/{again['id']}/actions/merge", json={"into": fid}, headers=op)
        assert r.status_code == 200 and r.json()["properties"]["status"] == "merged"

        def act(who, action, body=None, status=None):
            r = httpx.post(f"{base}/events/{fid}/actions/{action}", json=body or {}, headers=who)
            assert r.status_code == 200, (action, r.text)
            if status:
                assert r.json()["properties"]["status"] == status
            return r.json()["properties"]

        act(op, "accept", {"note": "confirmed by phone"}, "accepted")
        act(op, "dispatch", {"assignee": candidates[0], "department": "transport"}, "dispatched")
        act(worker, "start", {}, "in_progress")
        assert _tile_status(base, leader, fid) == "in_progress"

        # Nobody finishes in time: three days later the deadline job marks it overdue, raises an alarm and
        # escalates it one level (road damage escalates by itself).
        clock.ahead = deadline + timedelta(hours=1) - datetime.now(UTC)
        summary = dispatch.check_deadlines(store, at=clock())
        assert summary and summary.startswith("1 events overdue")
        now_ = httpx.get(f"{base}/collections/events/items/{fid}", headers=leader).json()["properties"]
        assert (now_["status"], now_["due_state"], now_["escalation_level"]) == ("in_progress", "overdue", 1)
        alarms = httpx.get(f"{base}/collections/alarms/items", params={"filter": f"event_id = {fid}"},
                           headers=op).json()
        assert [a["properties"]["alarm_kind"] for a in alarms["features"]] == ["overdue_event"]
        assert _stats(base, leader, "status")["overdue_now"] == 1

        act(worker, "handle", {"note": "patched"}, "handled")
        act(op, "rework", {"note": "the patch is already cracking"}, "in_progress")
        act(worker, "handle", {"note": "resurfaced"}, "handled")
        act(op, "verify", {}, "verified")
        closed = act(op, "close", {"note": "done"}, "closed")
        assert closed["closed_at"] and closed["assignee"] == "worker-A1" and closed["escalation_level"] == 1

        # The timeline holds every step, automatic ones included, and the duplicate's reporter.
        steps = [(t["action"], t["to_status"]) for t in _timeline(base, leader, fid)]
        assert steps == [
            ("report", "reported"), ("route", "reported"), ("deadline", None), ("merged-in", None),
            ("accept", "accepted"), ("dispatch", "dispatched"), ("start", "in_progress"),
            ("overdue", "in_progress"), ("escalate", "in_progress"), ("handle", "handled"),
            ("rework", "in_progress"), ("handle", "handled"), ("verify", "verified"), ("close", "closed")]
        actors = {t["action"]: t["actor"] for t in _timeline(base, leader, fid)}
        assert (actors["report"], actors["overdue"], actors["close"]) == ("worker-A1", None, "operator")

        # The statistics count it as the items do, with its handling time.
        figures = _stats(base, leader, "status")
        assert {g["status"]: g["count"] for g in figures["groups"]} == {"closed": 1, "merged": 1}
        for group in figures["groups"]:
            items = httpx.get(f"{base}/collections/events/items", headers=leader, params={
                "filter": f"title LIKE '{TITLE}%' AND status = '{group['status']}'", "limit": 1}).json()
            assert items["numberMatched"] == group["count"]
        assert figures["overdue_now"] == 0
        handling = figures["handling"]
        assert (handling["closed"], handling["on_time"], handling["on_time_rate"]) == (1, 0, 0.0)
        assert 73 <= handling["hours_p50"] < 74  # closed an hour or so past its 72 hours
        assert _stats(base, leader, "grid_code")["groups"] == [{"grid_code": "A1", "count": 2}]

        # The tile draws it closed.
        assert _tile_status(base, leader, fid) == "closed"

        # The leader's live stream saw each change, in order: the report, every step, the job's marks, the alarm.
        seen = [e for e in stream.drain(1.0) if e.event == "change"]
        mine = [(e.data["op"], e.data["properties"].get("status"), e.data["properties"].get("due_state"))
                for e in seen if e.data["layer"] == "events" and e.data["id"] == fid]
        assert mine == [("insert", "reported", None), ("update", "accepted", None), ("update", "dispatched", None),
                        ("update", "in_progress", None), ("update", "in_progress", "overdue"),
                        ("update", "handled", "overdue"), ("update", "in_progress", "overdue"),
                        ("update", "handled", "overdue"), ("update", "verified", "overdue"),
                        ("update", "closed", "overdue")]
        merged = [e.data["properties"]["status"] for e in seen if e.data["id"] == again["id"]
                  and e.data["layer"] == "events"]
        assert merged == ["reported", "merged"]
        assert [e.data["properties"]["alarm_kind"] for e in seen if e.data["layer"] == "alarms"] == ["overdue_event"]
        assert [e.seq for e in seen] == sorted(e.seq for e in seen)
    finally:
        stream.close()
