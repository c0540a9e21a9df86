"""Patrol and visit tasks (巡查走访) over HTTP on both stores: a task given, started, its objects visited, a
finding reported as an event linked both ways, completed; who sees and does what; bad input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from tests.api import county
from tests.api.conftest import login

GJ = {"Content-Type": "application/geo+json"}


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the tiny county's people, plus a second worker in A and one in B."""
    h = hash_password(county.PASSWORD)
    client.app.state.store.put_users([UserRecord("worker-A2", "worker", h, townships=("A",), grids=("A2",)),
                                      UserRecord("worker-B1", "worker", h, townships=("B",), grids=("B1",))])
    return {name: login(client, name) for name in ("admin", "operator", "leader-A", "leader-B", "worker-A1",
                                                    "worker-A2", "worker-B1", "dept-religion")}


@pytest.fixture(scope="module")
def temples(client, people):
    """Temple ids by township."""
    found = client.get("/collections/temples/items", headers=people["admin"]).json()["features"]
    return {f["properties"]["township_code"]: f["id"] for f in found}


def _due(hours: float = 48) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _task(client, headers, **fields):
    body = {"title": "visit the temple", "grid_code": "A1", "due_at": _due(), **fields}
    r = client.post("/tasks", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _act(client, headers, tid, action, body=None):
    return client.post(f"/tasks/{tid}/actions/{action}", json=body or {}, headers=headers)


def _finding(title="cracked wall", kind="illegal_building", lon=100.2, lat=33.2):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"title": title, "type": kind, "reported_at": datetime.now(UTC).isoformat()}}


def test_a_grid_task_is_started_visited_a_finding_becomes_an_event_and_it_is_completed(client, people, temples):
    leader, worker = people["leader-A"], people["worker-A1"]
    task = _task(client, leader, objects=[{"layer": "temples", "fid": temples["A"]}])
    assert (task["status"], task["township_code"], task["kind"], task["assignee"]) == ("open", "A", "visit", None)
    assert task["objects"][0]["name"] == "Temple A" and task["visited"] == 0 and task["overdue"] is False
    tid = task["id"]
    assert client.get(f"/tasks/{tid}", headers=people["worker-A1"]).status_code == 200  # his grid's task
    r = _act(client, worker, tid, "start")
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    assert r.json()["assignee"] == "worker-A1"  # whoever starts a grid's task does it
    r = _act(client, worker, tid, "visit", {"object": {"layer": "temples", "fid": temples["A"]}, "note": "ok"})
    assert r.status_code == 200 and r.json()["visited"] == 1
    assert r.json()["objects"][0]["visited_by"] == "worker-A1" and r.json()["objects"][0]["note"] == "ok"
    # A finding: an event through the report workflow (routed, given its deadline), naming the task.
    r = client.post(f"/tasks/{tid}/findings", json=_finding(), headers={**worker, **GJ})
    assert r.status_code == 201, r.text
    event = r.json()
    assert event["properties"]["task_id"] == tid and event["properties"]["status"] == "reported"
    assert (event["properties"]["township_code"], event["properties"]["grid_code"]) == ("A", "A1")
    assert event["properties"]["deadline"] and event["properties"]["reporter"] == "worker-A1"
    assert event["properties"]["source"] == "inspection"
    timeline = client.get(f"/events/{event['id']}/timeline", headers=leader).json()["timeline"]
    assert [t["action"] for t in timeline] == ["report", "route", "deadline", "task-finding"]
    assert timeline[-1]["data"] == {"task_id": tid}
    assert client.get(f"/tasks/{tid}", headers=leader).json()["findings"] == [event["id"]]
    r = _act(client, worker, tid, "complete", {"note": "all seen"})
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["finished_at"]
    history = client.get(f"/tasks/{tid}/timeline", headers=leader).json()["timeline"]
    assert [(h["action"], h["from_status"], h["to_status"]) for h in history] == [
        ("create", None, "open"), ("start", "open", "in_progress"), ("visit", "in_progress", "in_progress"),
        ("report", "in_progress", "in_progress"), ("complete", "in_progress", "done")]
    assert [h["actor"] for h in history] == ["leader-A"] + ["worker-A1"] * 4
    assert history[3]["data"]["event_id"] == event["id"]
    # A state is changed by actions only.
    r = client.patch(f"/tasks/{tid}", json={"status": "open"}, headers=leader)
    assert r.status_code == 409 and r.json()["parameter"] == "status"
    r = _act(client, worker, tid, "start")
    assert r.status_code == 409 and "allowed now: nothing" in r.json()["detail"]


def test_lists_per_worker_and_grid_and_another_township_s_task_does_not_exist(client, people):
    op = people["operator"]
    mine = _task(client, people["leader-A"], title="patrol A2", grid_code="A2", assignee="worker-A1")
    grid = _task(client, op, title="patrol A1", grid_code="A1")
    other = _task(client, people["leader-B"], title="patrol B1", grid_code="B1")

    def ids(who, **params):
        r = client.get("/tasks", params={"limit": 1000, **params}, headers=people[who])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["numberMatched"] == len(body["tasks"]) == body["numberReturned"]
        return {t["id"] for t in body["tasks"]}

    assert {mine["id"], grid["id"]} <= ids("worker-A1")
    assert ids("worker-A1", assignee="me") >= {mine["id"]} and grid["id"] not in ids("worker-A1", assignee="me")
    assert other["id"] not in ids("worker-A1") and grid["id"] not in ids("worker-A2")
    assert mine["id"] in ids("worker-A2")  # a task in his grid, even if another worker has it
    assert ids("leader-A", grid_code="A2") >= {mine["id"]} and other["id"] not in ids("leader-A")
    assert ids("leader-A", township_code="B") == set()
    assert {mine["id"], grid["id"], other["id"]} <= ids("operator")
    assert ids("operator", grid_code="B1") >= {other["id"]} and mine["id"] not in ids("operator", grid_code="B1")
    for who in ("leader-B", "worker-B1", "worker-A2"):
        if who == "worker-A2":
            who_task = grid["id"]  # grid A1 is not his
        else:
            who_task = mine["id"]
        assert client.get(f"/tasks/{who_task}", headers=people[who]).status_code == 404
        assert client.get(f"/tasks/{who_task}/timeline", headers=people[who]).status_code == 404
        assert _act(client, people[who], who_task, "cancel").status_code == 404
    assert client.get("/tasks").status_code == 401
    assert client.get(f"/tasks/{mine['id']}").status_code == 401


def test_who_gives_starts_and_cancels(client, people, temples):
    leader, worker = people["leader-A"], people["worker-A1"]
    body = {"title": "t", "grid_code": "A1", "due_at": _due()}
    assert client.post("/tasks", json=body, headers=worker).status_code == 403
    assert client.post("/tasks", json=body, headers=people["dept-religion"]).status_code == 403
    r = client.post("/tasks", json={**body, "grid_code": None, "township_code": "B"}, headers=leader)
    assert r.status_code == 403 and r.json()["parameter"] == "township_code"
    r = client.post("/tasks", json={**body, "grid_code": "B1"}, headers=leader)  # a grid he cannot see
    assert r.status_code == 400 and r.json()["parameter"] == "grid_code"
    task = _task(client, leader, assignee="worker-A1", objects=[{"layer": "temples", "fid": temples["A"]}])
    assert _act(client, leader, task["id"], "start").status_code == 403  # not his work
    assert _act(client, people["worker-A2"], task["id"], "start").status_code == 404  # not his grid
    assert _act(client, worker, task["id"], "cancel").status_code == 403
    assert _act(client, worker, task["id"], "start").status_code == 200
    r = _act(client, worker, task["id"], "complete")  # the temple is not visited yet
    assert r.status_code == 409 and "not visited" in r.json()["detail"]
    r = _act(client, worker, task["id"], "visit", {"object": {"layer": "temples", "fid": temples["B"]}})
    assert r.status_code == 400 and r.json()["parameter"] == "object"
    r = _act(client, leader, task["id"], "cancel", {"note": "road closed"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.post(f"/tasks/{task['id']}/findings", json=_finding(), headers={**worker, **GJ}).status_code == 409


def test_a_leader_edits_a_task_with_a_history_row_and_nothing_on_a_bad_edit(client, people, temples):
    leader = people["leader-A"]
    task = _task(client, leader)
    due = _due(72)
    r = client.patch(f"/tasks/{task['id']}", json={"title": "visit twice", "due_at": due, "assignee": "worker-A1",
                                                    "objects": [{"layer": "temples", "fid": temples["A"]}]},
                     headers=leader)
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["assignee"], len(r.json()["objects"])) == ("visit twice", "worker-A1", 1)
    for bad, field in (({"assignee": "worker-B1"}, "assignee"), ({"due_at": "2001-01-01T00:00:00Z"}, "due_at"),
                       ({"objects": [{"layer": "temples", "fid": temples["B"]}]}, "objects[0]"),
                       ({"colour": "red"}, "colour")):
        r = client.patch(f"/tasks/{task['id']}", json={"title": "changed?", **bad}, headers=leader)
        assert r.status_code == 400 and r.json()["parameter"] == field, r.text
    assert client.patch(f"/tasks/{task['id']}", json={"title": "x"}, headers=people["worker-A1"]).status_code == 403
    now_ = client.get(f"/tasks/{task['id']}", headers=leader).json()
    assert now_["title"] == "visit twice"
    history = client.get(f"/tasks/{task['id']}/timeline", headers=leader).json()["timeline"]
    assert [h["action"] for h in history] == ["create", "edit"]
    assert history[1]["data"]["assignee"] == "worker-A1" and history[1]["data"]["objects"] == 1


def test_of_several_starts_at_once_exactly_one_wins(client, people):
    task = _task(client, people["operator"], title="race")
    worker = people["worker-A1"]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _act(client, worker, task["id"], "start").status_code, range(6)))
    assert sorted(answers) == [200] + [409] * 5
    history = client.get(f"/tasks/{task['id']}/timeline", headers=worker).json()["timeline"]
    assert [h["action"] for h in history] == ["create", "start"]


def test_a_refused_finding_writes_nothing(client, people):
    worker, op = people["worker-A1"], people["operator"]
    task = _task(client, op, title="finding checks", assignee="worker-A1")
    r = client.post(f"/tasks/{task['id']}/findings", json=_finding(), headers={**worker, **GJ})
    assert r.status_code == 409  # not started
    _act(client, worker, task["id"], "start")
    before = client.get("/collections/events/items", params={"limit": 1}, headers=op).json()["numberMatched"]
    for body, field in ((_finding(kind="teleportation"), "type"), ({**_finding(), "properties": {}}, "title"),
                        ({**_finding(), "geometry": {"type": "Point", "coordinates": [1e308, 1e308]}}, None)):
        r = client.post(f"/tasks/{task['id']}/findings", json=body, headers={**worker, **GJ})
        assert r.status_code == 400, r.text
        if field:
            assert r.json()["parameter"] == field
    r = client.post(f"/tasks/{task['id']}/findings", json=_finding(), headers={**people["worker-A2"], **GJ})
    assert r.status_code == 404  # not his grid's task
    assert client.get("/collections/events/items", params={"limit": 1}, headers=op).json()["numberMatched"] == before
    assert [h["action"] for h in client.get(f"/tasks/{task['id']}/timeline", headers=op).json()["timeline"]] == [
        "create", "start"]


def test_a_finding_retried_with_its_idempotency_key_is_one_event(client, people):
    worker = people["worker-A1"]
    task = _task(client, people["operator"], title="retry", assignee="worker-A1")
    _act(client, worker, task["id"], "start")
    headers = {**worker, **GJ, "Idempotency-Key": f"finding-{task['id']}"}
    body = _finding()
    first = client.post(f"/tasks/{task['id']}/findings", json=body, headers=headers)
    again = client.post(f"/tasks/{task['id']}/findings", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert client.get(f"/tasks/{task['id']}", headers=worker).json()["findings"] == [first.json()["id"]]


@pytest.mark.parametrize("change, field", [
    ({"title": ""}, "title"), ({"title": "t" * 500}, "title"), ({"title": 7}, "title"),
    ({"due_at": "9999-12-31T23:59:59Z"}, "due_at"), ({"due_at": "0001-01-01T00:00:00Z"}, "due_at"),
    ({"due_at": "2020-01-01T00:00:00Z"}, "due_at"), ({"due_at": "2030-01-01T00:00:00"}, "due_at"),
    ({"due_at": "tomorrow"}, "due_at"), ({"due_at": 1e308}, "due_at"), ({"kind": "party"}, "kind"),
    ({"grid_code": "Z9"}, "grid_code"), ({"grid_code": None, "township_code": "Q"}, "township_code"),
    ({"grid_code": "A1", "township_code": "B"}, "township_code"), ({"assignee": "nobody"}, "assignee"),
    ({"assignee": "worker-B1"}, "assignee"), ({"objects": "all"}, "objects"),
    ({"objects": [{"layer": "temples", "fid": 2**64}]}, "objects[0]"),
    ({"objects": [{"layer": "temples", "fid": -1}]}, "objects[0]"),
    ({"objects": [{"layer": "temples", "fid": True}]}, "objects[0]"),
    ({"objects": [{"layer": "events", "fid": 1}]}, "objects[0]"),
    ({"objects": [{"layer": "temples", "fid": 999999}]}, "objects[0]"),
    ({"objects": [{"layer": "temples", "fid": 1, "x": 1}]}, "objects[0]"),
    ({"objects": [{"layer": "temples", "fid": 1}] * 201}, "objects"),
    ({"description": "d" * 5000}, "description"), ({"colour": "red"}, "colour"),
])
def test_a_bad_task_is_400_naming_the_field(client, people, change, field):
    body = {"title": "checked", "grid_code": "A1", "due_at": _due(), **change}
    r = client.post("/tasks", json={k: v for k, v in body.items() if v is not None}, headers=people["operator"])
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text


@pytest.mark.parametrize("body", ["[1, 2]", "{", "[" * 5000 + "]" * 5000, "null"])
def test_a_body_that_is_not_a_json_object_is_400(client, people, body):
    r = client.post("/tasks", content=body, headers={**people["operator"], "Content-Type": "application/json"})
    assert r.status_code == 400, r.text


def test_a_huge_body_is_refused(client, people):
    r = client.post("/tasks", content=b'{"title": "' + b"x" * (6 * 1024 * 1024) + b'"}',
                    headers={**people["operator"], "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["/tasks/999999", "/tasks/99999999999999999999", "/tasks/abc", "/tasks/0",
                                  "/tasks/-1/timeline", "/tasks/999999/timeline"])
def test_unknown_tasks_are_404(client, people, path):
    r = client.get(path, headers=people["operator"])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_unknown_actions_and_bad_action_bodies(client, people):
    task = _task(client, people["operator"], title="actions")
    op = people["operator"]
    assert _act(client, op, task["id"], "teleport").status_code == 404
    assert _act(client, op, 999999, "cancel").status_code == 404
    r = _act(client, op, task["id"], "cancel", {"note": "n" * 5000})
    assert r.status_code == 400 and r.json()["parameter"] == "note"
    r = _act(client, op, task["id"], "cancel", {"reason": "x"})
    assert r.status_code == 400 and r.json()["parameter"] == "body"
    assert client.get(f"/tasks/{task['id']}", headers=op).json()["status"] == "open"


@pytest.mark.parametrize("params, field", [
    ({"limit": "0"}, "limit"), ({"limit": "99999999999999999999999"}, "limit"), ({"offset": "-1"}, "offset"),
    ({"limit": "ten"}, "limit"), ({"status": "lost"}, "status"), ({"kind": "x"}, "kind"),
    ({"grid_code": "g" * 100}, "grid_code"), ({"colour": "red"}, "colour"),
])
def test_bad_list_parameters_are_400_naming_them(client, people, params, field):
    r = client.get("/tasks", params=params, headers=people["operator"])
    assert r.status_code == 400 and r.json()["parameter"] == field, r.text
