"""Who may touch what. The one place a (principal, layer, action) becomes a Scope of township codes.

Stores apply a Scope inside the query itself (SQL WHERE), never as a filter after fetching.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from geoserver.errors import NotFound

if TYPE_CHECKING:
    from geoserver.catalog import Layer


@dataclass(frozen=True)
class Scope:
    """The township codes a caller may touch on one layer for one action; `None` means every township.

    `owner`, when set, is (property, value): within those townships only the features whose property holds
    that value (a grid worker's own patrols, fixes and live position). Stores apply both inside the query.
    """

    townships: frozenset[str] | None
    owner: tuple[str, str] | None = None

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
    def empty(self) -> bool:
        """True when the scope holds no township at all (nothing to see, nothing to write)."""
        return self.townships == frozenset()

    @property
    def unrestricted(self) -> bool:
        """True when no restriction applies (every township, every owner)."""
        return self.townships is None and self.owner is None

    def allows(self, township_code: str | None) -> bool:
        """True if a feature keyed by `township_code` lies within the scope's townships (see `sees` for the
        owner too)."""
        return self.townships is None or (township_code is not None and township_code in self.townships)

    def sees(self, township_code: str | None, properties: Mapping[str, Any]) -> bool:
        """True if a feature with this township and these properties lies within the scope (township and owner;
        a feature whose owner is not known is not seen by an owner scope)."""
        if not self.allows(township_code):
            return False
        return self.owner is None or properties.get(self.owner[0]) == self.owner[1]

    def cache_key(self) -> str:
        """A stable text for caches whose entries depend on the scope."""
        towns = "*" if self.townships is None else ",".join(sorted(self.townships))
        return towns if self.owner is None else f"{towns}|{self.owner[0]}={self.owner[1]}"


ROLES = ("admin", "operator", "leader", "worker", "department", "external", "anonymous")
ACTIONS = ("read", "create", "update", "delete", "dispatch", "export")
ALL = "*"  # every township
OWN = "own"  # the principal's own townships
WRITES = ("create", "update", "delete")


@dataclass(frozen=True)
class Grant:
    """Permission to do `action` on `layer` in some townships: all (`*`), the holder's own, or listed codes.

    `layer` and `action` may be `*`. Role grants live in ROLE_GRANTS; per-user grants ride on the Principal
    (from the account, e.g. an external platform's key allowed to read one protected layer).
    """

    layer: str
    action: str
    townships: str | frozenset[str] = OWN

    @classmethod
    def parse(cls, value: Any) -> Grant:
        """A grant from stored form: `[layer, action]`, `[layer, action, townships]` or a dict of those."""
        if isinstance(value, Grant):
            return value
        if isinstance(value, dict):
            layer, action, towns = value["layer"], value["action"], value.get("townships", OWN)
        else:
            layer, action, *rest = value
            towns = rest[0] if rest else OWN
        if action != ALL and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} in grant")
        if not isinstance(towns, str):
            towns = frozenset(str(t) for t in towns)
        elif towns not in (ALL, OWN):
            raise ValueError(f"grant townships must be '*', 'own' or a list, got {towns!r}")
        return cls(str(layer), str(action), towns)

    def to_json(self) -> list[Any]:
        """The stored/claim form of the grant."""
        t = self.townships
        return [self.layer, self.action, t if isinstance(t, str) else sorted(t)]

    def matches(self, layer_id: str, action: str) -> bool:
        """True if the grant covers this layer and action."""
        return self.layer in (ALL, layer_id) and self.action in (ALL, action)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user or API key with a role, and the townships/grids/department they belong to."""

    username: str
    role: str
    townships: frozenset[str] = frozenset()
    grids: frozenset[str] = frozenset()
    department: str | None = None
    # Extra per-user grants beyond the role's (e.g. an external platform's key).
    grants: frozenset[Grant] = frozenset()

    @classmethod
    def anonymous(cls) -> Principal:
        """Nobody logged in: public layers only."""
        return cls("anonymous", "anonymous")

    @property
    def is_anonymous(self) -> bool:
        """True when nobody is logged in."""
        return self.role == "anonymous"


# The role policy: what each role may do on which layers in which townships. Layer conditions (public,
# writers, departments) are applied in scope_for below. This table and that function are the whole policy.
ROLE_GRANTS: dict[str, tuple[Grant, ...]] = {
    "admin": (Grant(ALL, ALL, ALL),),
    "operator": (Grant(ALL, ALL, ALL),),
    "leader": tuple(Grant(ALL, a, OWN) for a in ("read", "create", "update", "dispatch", "export")),
    # Which layers a worker writes is the layers' own declaration (Layer.writers), not a list here.
    "worker": tuple(Grant(ALL, a, OWN) for a in ("read", "create", "update")),
    "department": (Grant(ALL, "read", OWN), Grant(ALL, "export", OWN)),
    "external": (),
    "anonymous": (),
}


def _townships_of(grant: Grant, principal: Principal) -> frozenset[str] | None:
    if grant.townships == ALL:
        return None
    if grant.townships == OWN:
        return principal.townships
    return grant.townships  # type: ignore[return-value]


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
    if action == "read" and layer.public:
        return Scope.everything()
    role_grants = [g for g in ROLE_GRANTS.get(principal.role, ()) if g.matches(layer.id, action)]
    if principal.role == "department" and principal.department not in layer.departments:
        role_grants = []  # a department reads only its own thematic layers (and the public ones)
    if action in WRITES and principal.role != "admin" and principal.role not in layer.writers:
        role_grants = []  # a role writes only the layers that name it (Layer.writers); admins write all
    scope = _union(role_grants + [g for g in principal.grants if g.matches(layer.id, action)], principal)
    owner = track_owner(principal)
    if owner is not None and layer.id in OWN_TRACKS and not scope.empty:
        return Scope(scope.townships, (OWN_TRACKS[layer.id], owner))  # his own patrols, fixes and position
    return scope


def _union(grants: list[Grant], principal: Principal) -> Scope:
    towns: set[str] = set()
    for grant in grants:
        codes = _townships_of(grant, principal)
        if codes is None:
            return Scope.everything()
        towns |= codes
    return Scope.of(towns) if towns else Scope.nothing()


def ingest_scope(principal: Principal, layer) -> Scope:
    """The townships whose sites `principal` may send machine readings for into `layer` (devices and IoT
    platforms feed it; it is not edited by hand, so its `writers` declaration does not apply): the role's `create`
    grants and the principal's own (an API key granted `[layer, "create", "*"]`)."""
    grants = [g for g in (*ROLE_GRANTS.get(principal.role, ()), *principal.grants) if g.matches(layer.id, "create")]
    if principal.role in ("worker", "department"):
        grants = [g for g in principal.grants if g.matches(layer.id, "create")]  # people in the field report
    return _union(grants, principal)


TASKS = "tasks"  # patrol and visit tasks (layers/tasks.py): not a layer, granted like one by this name


@dataclass(frozen=True)
class TaskScope:
    """Which patrol and visit tasks (巡查走访) a principal sees and which it manages.

    `manage`: the townships whose tasks it creates, edits and cancels (a `dispatch` grant). `read`: the
    townships whose tasks it may see; with `own_work_only`, only those assigned to it or to one of its grids
    (a worker's or a department's own work, not the township's).
    """

    manage: Scope
    read: Scope
    own_work_only: bool
    username: str
    grids: frozenset[str]

    def sees(self, township_code: str | None, grid_code: str | None, assignee: str | None) -> bool:
        """True if a task with these keys is visible."""
        if not self.read.allows(township_code):
            return False
        return not self.own_work_only or assignee == self.username or grid_code in self.grids


def task_scope(principal: Principal) -> TaskScope:
    """The tasks `principal` sees and manages: the role's and its own grants on `tasks`, read and dispatch."""
    grants = (*ROLE_GRANTS.get(principal.role, ()), *principal.grants)
    manage = _union([g for g in grants if g.matches(TASKS, "dispatch")], principal)
    read = _union([g for g in grants if g.matches(TASKS, "read")], principal)
    if principal.is_anonymous:
        manage = read = Scope.nothing()
    return TaskScope(manage, read, manage.empty, principal.username, principal.grids)


def readable_layers(principal: Principal, layers: Iterable[Layer]) -> list[tuple[Layer, Scope]]:
    """The layers the principal may read at all, in the order given, each with its read scope.

    The one "what may this caller read" loop: collections, tiles, styles, WMTS outlines and the 3D model all
    list layers through it. A layer left out does not exist for the caller (404, never 403).
    """
    out = []
    for layer in layers:
        scope = scope_for(principal, layer, "read")
        if not scope.empty:
            out.append((layer, scope))
    return out


def read_scope(principal: Principal, layer: Layer) -> Scope:
    """The principal's read scope on one layer; NotFound naming the collection when it may not read it."""
    for _, scope in readable_layers(principal, (layer,)):
        return scope
    raise NotFound(f"no collection {layer.id!r}", parameter="collectionId")


# The layers where a grid worker sees and writes only his own features, by the property naming their worker:
# where a worker went, and when, is his own business and his leaders', not his colleagues' (track_owner).
OWN_TRACKS = {"patrols": "worker", "track_points": "worker", "positions": "worker"}


def track_owner(principal: Principal) -> str | None:
    """The one worker whose patrols, tracks, live position and patrol figures the principal may see, within the
    read scope: a grid worker sees only his own (a colleague's track is his whereabouts, not the township's);
    None for every other role (the township scope alone decides). scope_for applies it to the OWN_TRACKS
    layers, so items, tiles, extents, searches, exports and the live stream keep to it like the replay and the
    statistics do."""
    return principal.username if principal.role == "worker" else None


def may_administer_accounts(principal: Principal) -> bool:
    """True if the principal creates, re-grants and disables accounts and issues API keys: admins only."""
    return principal.role == "admin"


def may_manage_alarm_rules(principal: Principal) -> bool:
    """True if the principal writes the alarm rules (a county-wide setting): admins only."""
    return principal.role == "admin"


def may_read_alarm_rules(principal: Principal) -> bool:
    """True if the principal reads the alarm rules: admins and the county's operators."""
    return principal.role in ("admin", "operator")
