"""Patrol and visit tasks (巡查走访): work given to a grid or a worker, with a due date and the buildings, sites
and temples to visit. Operators and leaders (a `dispatch` grant) create, edit and cancel them in their
townships; workers see their own and their grid's. Every change is one transaction with a history row.

The steps a task takes are actions, as an event's are (layers/task_work.py); this module creates, lists, reads
and edits them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from geoserver.access import Principal, Scope, TaskScope, scope_for, task_scope
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, Unauthorized
from geoserver.features import FeatureQuery
from geoserver.store import Store
from geoserver.store.rows_sql import ANY
from layers.dispatch import MAX_NOTE, now
from layers.task_tables import TASK_KINDS, TASK_STATUSES

TABLE = "tasks"
HISTORY = "task_history"
ACTIVE = ("open", "in_progress")
VISITABLE = ("buildings", "monitoring_sites", "temples", "pois")
MAX_OBJECTS = 200
MAX_DUE_DAYS = 366
MAX_TEXT = 200
MAX_PAGE = 1000
FIELDS = ("title", "description", "kind", "grid_code", "township_code", "assignee", "due_at", "objects")
EDITABLE = ("title", "description", "assignee", "due_at", "objects")
LIST_PARAMS = ("assignee", "grid_code", "township_code", "status", "kind", "limit", "offset")


# -- who -------------------------------------------------------------------------------------------------
def scope_of(principal: Principal) -> TaskScope:
    """The caller's task scope; Unauthorized for nobody logged in (logging in may help)."""
    if principal.is_anonymous:
        raise Unauthorized("log in to see tasks", parameter="Authorization")
    return task_scope(principal)


def visible(store: Store, principal: Principal, task_id: int, *, for_update: bool = False) -> dict[str, Any]:
    """A task the caller may see (NotFound otherwise: another township's task does not exist for them)."""
    scope = scope_of(principal)
    found = store.rows(TABLE, {"id": task_id}, limit=1, for_update=for_update) if 0 < task_id < 2**63 else []
    if not found or not scope.sees(found[0]["township_code"], found[0]["grid_code"], found[0]["assignee"]):
        raise NotFound(f"no task {task_id}", parameter="taskId")
    return found[0]


def manages(principal: Principal, task: dict[str, Any]) -> bool:
    """True if the caller creates, edits and cancels tasks of this task's township."""
    return scope_of(principal).manage.allows(task["township_code"])


def works_on(principal: Principal, task: dict[str, Any]) -> bool:
    """True if the caller does the task: its assignee, or a worker of its grid while nobody is assigned."""
    if task["assignee"] is not None:
        return task["assignee"] == principal.username
    return task["grid_code"] is not None and task["grid_code"] in principal.grids


def add_history(store: Store, task_id: int, actor: str | None, action: str, *, from_status: str | None = None,
                to_status: str | None = None, note: str | None = None, data: dict | None = None) -> None:
    """Append one history row (inside the transaction that makes the change)."""
    store.add_row(HISTORY, {"task_id": task_id, "at": now(), "actor": actor, "action": action,
                            "from_status": from_status, "to_status": to_status, "note": note, "data": data})


# -- checks of a body --------------------------------------------------------------------------------------
def text(body: dict[str, Any], name: str, *, limit: int = MAX_TEXT, required: bool = False) -> str | None:
    """A non-empty text field of at most `limit` characters (None when absent and not required)."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadInput(f"{name} is required", parameter=name)
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadInput(f"{name} must be non-empty text of at most {limit} characters", parameter=name)
    return value.strip()


def _due(body: dict[str, Any], at: datetime) -> datetime:
    value = body.get("due_at")
    if not isinstance(value, str):
        raise BadInput("due_at is required: a date-time with its zone, e.g. 2025-06-01T18:00:00+08:00",
                       parameter="due_at")
    try:
        due = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"due_at must be an ISO 8601 date-time; got {value[:40]!r}", parameter="due_at") from None
    if due.tzinfo is None:
        raise BadInput("due_at needs a time zone (Z or ±hh:mm)", parameter="due_at")
    if not at < due <= at + timedelta(days=MAX_DUE_DAYS):
        raise BadInput(f"due_at must lie after now and within {MAX_DUE_DAYS} days", parameter="due_at")
    return due


def _feature_codes(store: Store, layer: str, key: str, value: str, scope: Scope) -> dict[str, Any] | None:
    query = FeatureQuery(filter={"op": "=", "args": [{"property": key}, value]}, limit=1, with_geometry=False)
    page = store.query(layer, query, scope)
    return page.features[0].properties if page.features else None


def _place(store: Store, catalog: Catalog, principal: Principal, body: dict[str, Any]) -> tuple[str, str | None]:
    """The township (and grid) of a new task: from its grid, or named; the caller must manage it."""
    grid = text(body, "grid_code", limit=64)
    township = text(body, "township_code", limit=64)
    if grid is not None:
        props = _feature_codes(store, "grids", "grid_code", grid, scope_for(principal, catalog.get("grids"), "read"))
        if props is None:
            raise BadInput(f"grid_code: no grid {grid!r}", parameter="grid_code")
        if township is not None and township != props["township_code"]:
            raise BadInput(f"grid {grid} lies in township {props['township_code']}, not {township}",
                           parameter="township_code")
        township = props["township_code"]
    elif township is None:
        raise BadInput("a task needs a grid_code or a township_code", parameter="grid_code")
    elif _feature_codes(store, "townships", "township_code", township, Scope.everything()) is None:
        raise BadInput(f"township_code: no township {township!r}", parameter="township_code")
    if not scope_of(principal).manage.allows(township):
        raise Forbidden(f"you may not give tasks in township {township}", parameter="township_code")
    return township, grid


def _assignee(store: Store, body: dict[str, Any], township: str) -> str | None:
    name = text(body, "assignee", limit=64)
    if name is None:
        return None
    user = store.get_user(name)
    if user is None or user.disabled or not (user.role in ("admin", "operator") or township in user.townships):
        raise BadInput(f"assignee: no account {name!r} working in township {township}", parameter="assignee")
    return name


def _objects(store: Store, catalog: Catalog, principal: Principal, body: dict[str, Any], township: str,
             kept: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The objects to visit: each `{"layer", "fid"}` a feature of the task's township (visits kept on edit)."""
    value = body.get("objects")
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_OBJECTS:
        raise BadInput(f"objects must be a list of at most {MAX_OBJECTS} {{layer, fid}}", parameter="objects")
    before = {(o["layer"], o["fid"]): o for o in kept or []}
    out, seen = [], set()
    for i, item in enumerate(value):
        field = f"objects[{i}]"
        if not isinstance(item, dict) or set(item) - {"layer", "fid"}:
            raise BadInput(f"{field} must be {{\"layer\", \"fid\"}}", parameter=field)
        layer, fid = item.get("layer"), item.get("fid")
        if layer not in VISITABLE:
            raise BadInput(f"{field}.layer must be one of {', '.join(VISITABLE)}", parameter=field)
        if not isinstance(fid, int) or isinstance(fid, bool) or not 0 < fid < 2**63:
            raise BadInput(f"{field}.fid must be a feature id (a positive 64-bit integer)", parameter=field)
        if (layer, fid) in seen:
            raise BadInput(f"{field}: {layer} {fid} is listed twice", parameter=field)
        seen.add((layer, fid))
        if (layer, fid) in before:
            out.append(before[(layer, fid)])
            continue
        readable = scope_for(principal, catalog.get(layer), "read").allows(township)
        try:
            feature = store.get(layer, fid, Scope.of([township]) if readable else Scope.nothing())
        except NotFound:
            raise BadInput(f"{field}: no {layer} {fid} in township {township}", parameter=field) from None
        name = feature.properties.get("name")
        out.append({"layer": layer, "fid": fid, "name": name if isinstance(name, str) else None,
                    "visited_at": None, "visited_by": None, "note": None})
    return out


def _fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    if "status" in body:
        raise Conflict("status is set by the task actions (POST /tasks/{id}/actions/{start,visit,complete,cancel})"
                       ", not by a write", parameter="status")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadInput(f"unknown field {unknown[0]!r}; fields: {', '.join(allowed)}", parameter=unknown[0])
    return body


# -- create, read, list, edit ----------------------------------------------------------------------------
def create(store: Store, catalog: Catalog, principal: Principal, body: Any) -> dict[str, Any]:
    """A new open task (managers of its township); its history starts with `create`."""
    if scope_of(principal).manage.empty:
        raise Forbidden("only dispatchers (operators, township leaders) give tasks", parameter="Authorization")
    body = _fields(body, FIELDS)
    at = now()
    title = text(body, "title", required=True)
    description = text(body, "description", limit=MAX_NOTE)
    kind = body.get("kind", "visit" if body.get("objects") else "patrol")
    if kind not in TASK_KINDS:
        raise BadInput(f"kind must be one of {', '.join(TASK_KINDS)}", parameter="kind")
    due = _due(body, at)
    with store.transaction(actor=principal.username):
        township, grid = _place(store, catalog, principal, body)
        assignee = _assignee(store, body, township)
        objects = _objects(store, catalog, principal, body, township)
        row = store.add_row(TABLE, {
            "title": title, "description": description, "kind": kind, "status": "open", "township_code": township,
            "grid_code": grid, "assignee": assignee, "due_at": due, "objects": objects,
            "created_by": principal.username, "created_at": at})
        add_history(store, row["id"], principal.username, "create", to_status="open",
                    data={"grid_code": grid, "assignee": assignee, "due_at": due.isoformat(),
                          "objects": len(objects)})
    return public(row)


def get(store: Store, catalog: Catalog, principal: Principal, task_id: int) -> dict[str, Any]:
    """One task the caller may see, with the events found on it that the caller may read."""
    task = public(visible(store, principal, task_id))
    query = FeatureQuery(filter={"op": "=", "args": [{"property": "task_id"}, task_id]}, limit=MAX_PAGE,
                         with_geometry=False, properties=("status",))
    page = store.query("events", query, scope_for(principal, catalog.get("events"), "read"))
    task["findings"] = [f.id for f in page.features]
    return task


def _int_param(args: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be an integer", parameter=name) from None
    if not lo <= value <= hi:
        raise BadInput(f"{name} must be between {lo} and {hi}", parameter=name)
    return value


def list_tasks(store: Store, principal: Principal, args: dict[str, str]) -> dict[str, Any]:
    """The tasks the caller sees, filtered by assignee (`me` is the caller), grid, township, status, kind."""
    scope = scope_of(principal)
    unknown = sorted(set(args) - set(LIST_PARAMS))
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0]!r}; parameters: {', '.join(LIST_PARAMS)}",
                       parameter=unknown[0])
    where: dict[str, Any] = {}
    for name in ("assignee", "grid_code", "township_code"):
        if name in args:
            value = args[name]
            if not value or len(value) > 64:
                raise BadInput(f"{name} must be a name of 1-64 characters", parameter=name)
            where[name] = principal.username if name == "assignee" and value == "me" else value
    for name, allowed in (("status", TASK_STATUSES), ("kind", TASK_KINDS)):
        if name in args:
            if args[name] not in allowed:
                raise BadInput(f"{name} must be one of {', '.join(allowed)}", parameter=name)
            where[name] = args[name]
    limit = _int_param(args, "limit", 100, 1, MAX_PAGE)
    offset = _int_param(args, "offset", 0, 0, 2**31)
    if not scope.read.unrestricted:  # the scope, applied in the query itself
        towns = scope.read.townships or frozenset()
        where["township_code"] = [t for t in [where["township_code"]] if t in towns] if "township_code" in where \
            else sorted(towns)
    if scope.own_work_only:
        where[ANY] = [{"assignee": principal.username}, {"grid_code": sorted(scope.grids)}]
    rows = store.rows(TABLE, where, order_by=("due_at",), limit=limit, offset=offset)
    return {"tasks": [public(r) for r in rows], "numberMatched": store.count_rows(TABLE, where),
            "numberReturned": len(rows)}


def edit(store: Store, catalog: Catalog, principal: Principal, task_id: int, body: Any) -> dict[str, Any]:
    """Change an open or started task's title, description, assignee, due date or objects (managers)."""
    body = _fields(body, EDITABLE)
    with store.transaction(actor=principal.username):
        task = visible(store, principal, task_id, for_update=True)
        if not manages(principal, task):
            raise Forbidden("only a dispatcher of the task's township edits it", parameter="taskId")
        if task["status"] not in ACTIVE:
            raise Conflict(f"task {task_id} is {task['status']}: only open or started tasks change",
                           parameter="taskId")
        changes: dict[str, Any] = {}
        for name in ("title", "description"):
            if name in body:
                changes[name] = text(body, name, required=name == "title",
                                     limit=MAX_NOTE if name == "description" else MAX_TEXT)
        if "due_at" in body:
            changes["due_at"] = _due(body, now())
        if "assignee" in body:
            changes["assignee"] = _assignee(store, body, task["township_code"])
        if "objects" in body:
            changes["objects"] = _objects(store, catalog, principal, body, task["township_code"], task["objects"])
        changes = {k: v for k, v in changes.items() if v != task[k]}
        if changes:
            store.update_rows(TABLE, {"id": task_id}, changes)
            add_history(store, task_id, principal.username, "edit", from_status=task["status"],
                        to_status=task["status"], data={k: _plain(v) for k, v in changes.items()
                                                        if k != "objects"} | (
                            {"objects": len(changes["objects"])} if "objects" in changes else {}))
        return public({**task, **changes})


def history(store: Store, principal: Principal, task_id: int) -> list[dict[str, Any]]:
    """Every step of a task the caller may see, oldest first."""
    visible(store, principal, task_id)
    return [{k: _plain(v) for k, v in r.items() if k != "task_id"}
            for r in store.rows(HISTORY, {"task_id": task_id}, order_by=("at",))]


def _plain(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A task as the API shows it: times in UTC, how many objects are visited, and whether it is overdue."""
    out = {k: _plain(v) for k, v in row.items()}
    objects = row.get("objects") or []
    out["visited"] = sum(1 for o in objects if o.get("visited_at"))
    out["overdue"] = row["status"] in ACTIVE and row["due_at"] < now()
    return out
