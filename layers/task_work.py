"""The steps of a patrol or visit task: start, visit an object, complete, cancel -- and a finding reported on
it, which becomes an event through the same report path as any other (layers/rules.create), linked both ways.

open -> in_progress (start) -> done (complete); open or in_progress -> cancelled (cancel). `visit` marks one
object visited while the task is in progress. The worker of the task (its assignee, or while nobody is
assigned a worker of its grid, who then becomes the assignee) starts, visits and reports; a dispatcher of
its township cancels; either completes. Each step is one transaction: the task written only if it is still in
the state read, and a history row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geoserver.access import Principal
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound
from geoserver.features import Feature
from geoserver.store import Store
from layers import dispatch, rules
from layers.dispatch import MAX_NOTE, now
from layers.tasks import TABLE, add_history, manages, public, text, visible, works_on


@dataclass(frozen=True)
class Step:
    """One action on a task: the states it applies in, the state it leads to, who may do it."""

    name: str
    sources: tuple[str, ...]
    target: str
    by: str  # "worker", "manager" or "either"


STEPS = {s.name: s for s in (
    Step("start", ("open",), "in_progress", "worker"),
    Step("visit", ("in_progress",), "in_progress", "worker"),
    Step("complete", ("in_progress",), "done", "either"),
    Step("cancel", ("open", "in_progress"), "cancelled", "manager"),
)}
WHO = {"worker": "the task's worker (its assignee, or a worker of its grid)",
       "manager": "a dispatcher of the task's township",
       "either": "the task's worker or a dispatcher of its township"}


def allowed_now(status: str) -> list[str]:
    """The actions legal from `status`."""
    return [s.name for s in STEPS.values() if status in s.sources] + (["report"] if status == "in_progress" else [])


def _check(principal: Principal, task: dict[str, Any], name: str, sources: tuple[str, ...], by: str) -> None:
    worker, manager = works_on(principal, task), manages(principal, task)
    if not {"worker": worker, "manager": manager, "either": worker or manager}[by]:
        raise Forbidden(f"only {WHO[by]} may {name} this task", parameter="action")
    if task["status"] not in sources:
        legal = allowed_now(task["status"])
        raise Conflict(f"cannot {name} a task that is {task['status']}; allowed now: "
                       f"{', '.join(legal) or 'nothing (it is finished)'}", parameter="action")


def _note(body: dict[str, Any]) -> str | None:
    return text(body, "note", limit=MAX_NOTE)


def _target(task: dict[str, Any], body: dict[str, Any]) -> int:
    """The index in the task's objects of `{"object": {"layer", "fid"}}`."""
    obj = body.get("object")
    if not isinstance(obj, dict) or set(obj) != {"layer", "fid"}:
        raise BadInput('visit needs "object": {"layer", "fid"} of one of the task\'s objects', parameter="object")
    for i, o in enumerate(task["objects"] or []):
        if o["layer"] == obj["layer"] and o["fid"] == obj["fid"] and not isinstance(obj["fid"], bool):
            return i
    raise BadInput(f"object: {obj['layer']!r} {obj['fid']!r} is not one of this task's objects", parameter="object")


def act(store: Store, catalog: Catalog, principal: Principal, task_id: int, action: str,
        body: Any) -> dict[str, Any]:
    """Do `action` on a task as `principal` in one transaction; returns the task as it is now.

    Raises:
        NotFound: no such task or action, or a task the principal may not see.
        Forbidden: the principal may not do this action on this task.
        Conflict: the action is not legal in the task's state (the message lists those that are).
        BadInput: a bad body (naming the field).
    """
    step = STEPS.get(action)
    if step is None:
        raise NotFound(f"no action {action!r}; actions: {', '.join(STEPS)} (findings: POST /tasks/{{id}}/findings)",
                       parameter="action")
    if not isinstance(body, dict) or set(body) - {"note", "object"}:
        raise BadInput('the body must be a JSON object with "note" (and for visit "object")', parameter="body")
    note = _note(body)
    with store.transaction(actor=principal.username):
        task = visible(store, principal, task_id, for_update=True)
        _check(principal, task, action, step.sources, step.by)
        at = now()
        changes: dict[str, Any] = {"status": step.target}
        data: dict[str, Any] = {}
        if action == "start":
            changes["started_at"] = at
            if task["assignee"] is None:  # a grid's task: whoever starts it does it
                changes["assignee"] = data["assignee"] = principal.username
        elif action == "visit":
            i = _target(task, body)
            objects = [dict(o) for o in task["objects"]]
            objects[i].update(visited_at=at.isoformat().replace("+00:00", "Z"), visited_by=principal.username,
                              note=note)
            changes["objects"] = objects
            data = {"layer": objects[i]["layer"], "fid": objects[i]["fid"]}
        elif action == "complete":
            left = [o for o in task["objects"] or [] if not o.get("visited_at")]
            if left:
                names = ", ".join(f"{o['layer']} {o['fid']}" for o in left[:5])
                raise Conflict(f"{len(left)} object(s) not visited yet ({names}{', ...' if len(left) > 5 else ''})"
                               f": visit them, or a dispatcher cancels the task", parameter="action")
            changes["finished_at"] = at
        elif action == "cancel":
            changes["finished_at"] = at
        # Written only if still in the state read: of two people acting at once, one wins.
        if store.update_rows(TABLE, {"id": task_id, "status": task["status"]}, changes) != 1:
            raise Conflict(f"task {task_id} changed while you acted on it; reload it and retry", parameter="action")
        add_history(store, task_id, principal.username, action, from_status=task["status"], to_status=step.target,
                    note=note, data=data or None)
        return public({**task, **changes})


def report(store: Store, catalog: Catalog, principal: Principal, task_id: int, event: Feature) -> Feature:
    """A finding on a started task: an event reported by its worker (the same workflow as any report), naming
    the task (`task_id`), with a timeline row on the event and a history row on the task -- one transaction."""
    layer = catalog.get("events")
    with store.transaction(actor=principal.username):
        task = visible(store, principal, task_id, for_update=True)
        _check(principal, task, "report a finding on", ("in_progress",), "worker")
        props = dict(event.properties)
        props.setdefault("source", "inspection")
        props.setdefault("reporter", principal.username)
        stored = rules.create(store, principal, layer, Feature(None, event.geometry, props),
                              workflow={"task_id": task_id})
        dispatch.add_timeline(store, stored.id, principal.username, "task-finding", to_status=stored.properties.get(
            "status"), note=f"found on task {task_id}: {task['title']}", data={"task_id": task_id})
        add_history(store, task_id, principal.username, "report", from_status=task["status"],
                    to_status=task["status"], note=stored.properties.get("title"),
                    data={"event_id": stored.id, "type": stored.properties.get("type")})
        return stored

