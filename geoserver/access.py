"""Who may touch what. The one place a (principal, layer, action) becomes a Scope of township codes.

Stores apply a Scope inside the query itself (SQL WHERE), never as a filter after fetching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The township codes a caller may touch on one layer for one action; `None` means every township."""

    townships: frozenset[str] | None

    @classmethod
    def everything(cls) -> Scope:
        """No township restriction (admins, the county operator, internal jobs)."""
        return cls(None)

    @classmethod
    def nothing(cls) -> Scope:
        """No township at all: every read is empty, every write refused."""
        return cls(frozenset())

    @classmethod
    def of(cls, codes: Iterable[str]) -> Scope:
        """Exactly these township codes."""
        return cls(frozenset(codes))

    @property
    def unrestricted(self) -> bool:
        """True when no township restriction applies."""
        return self.townships is None

    def allows(self, township_code: str | None) -> bool:
        """True if a feature keyed by `township_code` lies within the scope."""
        return self.townships is None or (township_code is not None and township_code in self.townships)

    def cache_key(self) -> str:
        """A stable text for caches whose entries depend on the scope."""
        return "*" if self.townships is None else ",".join(sorted(self.townships))


ROLES = ("admin", "operator", "leader", "worker", "department", "external", "anonymous")
ACTIONS = ("read", "create", "update", "delete", "dispatch", "export")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user or API key with a role, and the townships/grids/department they belong to."""

    username: str
    role: str
    townships: frozenset[str] = frozenset()
    grids: frozenset[str] = frozenset()
    department: str | None = None
    # Extra per-user grants: (layer id, action) pairs beyond the role's (e.g. an external platform's key).
    grants: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def anonymous(cls) -> Principal:
        """Nobody logged in: public layers only."""
        return cls("anonymous", "anonymous")


# What each role may do, per action: "all" townships, "own" townships, or (absent) nothing.
# Layer-specific exceptions are in scope_for below. This table and that function are the whole policy.
_ROLE_RULES: dict[str, dict[str, str]] = {
    "admin": {a: "all" for a in ACTIONS},
    "operator": {a: "all" for a in ACTIONS},
    "leader": {"read": "own", "update": "own", "dispatch": "own", "export": "own", "create": "own"},
    "worker": {"read": "own", "create": "own", "update": "own"},
    "department": {"read": "own", "export": "own"},
    "external": {"read": "all"},
    "anonymous": {},
}
# Layers a grid worker may write (reports, patrol uploads); everything else is read-only for them.
_WORKER_WRITABLE = frozenset({"events", "patrols", "track_points"})


def scope_for(principal: Principal, layer, action: str) -> Scope:
    """The townships `principal` may touch on `layer` for `action` -- the one place this is decided.

    Args:
        principal: the caller.
        layer: a geoserver.catalog.Layer.
        action: one of ACTIONS.

    Returns:
        Scope.everything(), a Scope of township codes, or Scope.nothing() (the layer is invisible).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if (layer.id, action) in principal.grants:
        return Scope.everything() if not principal.townships else Scope.of(principal.townships)
    if action == "read" and layer.public:
        return Scope.everything()
    rule = _ROLE_RULES.get(principal.role, {}).get(action)
    if rule is None:
        return Scope.nothing()
    if action in ("create", "update", "delete") and not layer.editable and principal.role not in ("admin",):
        if not (principal.role == "worker" and layer.id in _WORKER_WRITABLE):
            return Scope.nothing()
    if principal.role == "worker" and action != "read" and layer.id not in _WORKER_WRITABLE:
        return Scope.nothing()
    if principal.role == "department" and principal.department not in layer.departments:
        return Scope.nothing()
    if principal.role == "external" and not layer.public:
        return Scope.nothing()
    if rule == "all":
        return Scope.everything()
    return Scope.of(principal.townships)


def visible_layer_ids(principal: Principal, layers) -> list[str]:
    """Ids of the layers the principal may read at all (a layer it may not read does not exist for it)."""
    return [layer.id for layer in layers if scope_for(principal, layer, "read").townships != frozenset()]
