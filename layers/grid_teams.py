"""Who works in which grid (网格入格): each grid's team -- leader, full-time and part-time workers, instructor --
and the department accounts bound to it. Data admins maintain; routing a report reads it."""

from __future__ import annotations

from typing import Any

from geoserver.access import Principal, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import BadInput, Forbidden, NotFound
from geoserver.features import FeatureQuery
from geoserver.store import Store

TABLE = "grid_bindings"
ROLES = ("leader", "full_time", "part_time", "instructor", "department")
MAX_BINDINGS = 200


def _grid_township(store: Store, catalog: Catalog, principal: Principal, grid_code: str) -> str:
    """The township of a grid the principal may see; NotFound otherwise."""
    query = FeatureQuery(filter={"op": "=", "args": [{"property": "grid_code"}, grid_code]}, limit=1,
                         with_geometry=False)
    page = store.query("grids", query, scope_for(principal, catalog.get("grids"), "read"))
    if not page.features:
        raise NotFound(f"no grid {grid_code!r}", parameter="code")
    return page.features[0].properties.get("township_code")


def bindings(store: Store, catalog: Catalog, principal: Principal, grid_code: str) -> list[dict[str, Any]]:
    """The grid's team and bound departments, by role then name."""
    _grid_township(store, catalog, principal, grid_code)
    return [{"username": r["username"], "role": r["role"]}
            for r in store.rows(TABLE, {"grid_code": grid_code}, order_by=("role", "username"))]


def replace_bindings(store: Store, catalog: Catalog, principal: Principal, grid_code: str,
                     body: Any) -> list[dict[str, Any]]:
    """Replace a grid's bindings (admins) in one transaction; every account must exist."""
    if principal.role != "admin":
        raise Forbidden("only an admin changes a grid's team", parameter="Authorization")
    if not isinstance(body, dict) or not isinstance(body.get("bindings"), list):
        raise BadInput('the body must be {"bindings": [{"username": …, "role": …}, …]}', parameter="bindings")
    items = body["bindings"]
    if len(items) > MAX_BINDINGS:
        raise BadInput(f"at most {MAX_BINDINGS} bindings per grid", parameter="bindings")
    rows = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("username"), str) or item.get("role") not in ROLES:
            raise BadInput(f"bindings[{i}] must have a username and a role among {', '.join(ROLES)}",
                           parameter="bindings")
        if store.get_user(item["username"]) is None:
            raise BadInput(f"bindings[{i}]: no account {item['username']!r}", parameter="bindings")
        rows.add((item["username"], item["role"]))
    with store.transaction(actor=principal.username):
        _grid_township(store, catalog, principal, grid_code)
        store.delete_rows(TABLE, {"grid_code": grid_code})
        for username, role in sorted(rows):
            store.add_row(TABLE, {"grid_code": grid_code, "username": username, "role": role})
    return bindings(store, catalog, principal, grid_code)


def candidates(store: Store, grid_code: str | None) -> list[dict[str, Any]]:
    """Who a report in the grid goes to: its team and its bound departments (empty outside every grid)."""
    if not grid_code:
        return []
    return [{"username": r["username"], "role": r["role"]}
            for r in store.rows(TABLE, {"grid_code": grid_code}, order_by=("role", "username"))]


