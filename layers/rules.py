"""Write rules: what every create, replace, update and delete through the API passes before the Store.

Two declarations on the layer decide it, whatever the store:

- who may write it: `Layer.writers`, turned into a scope of townships by geoserver/access.py;
- which properties its workflow owns: `Property.set_by`. A create starts them at their `initial` value, a
  replace keeps the stored values (a body may repeat them or leave them out), and a write that would change
  one is a Conflict naming the property and what changes it instead -- for everyone, admins included: a
  state is never set by a bare PATCH.

Each write is one Store transaction under the caller's name (the change log's actor). Bulk loads (`onemap
load`, the sample generator) are not API writes and do not come here.
"""

from __future__ import annotations

from geoserver.access import Principal, Scope, scope_for
from geoserver.catalog import Layer, Property
from geoserver.errors import Conflict, Forbidden, PreconditionFailed, Unauthorized
from geoserver.features import Feature, check_feature
from geoserver.store import Store
from geoserver.store.guards import check_etag
from layers import workflows

# How often a replace or update re-reads a feature that another process changed between the read and the
# write (only when the caller sent no If-Match of its own; with one, the change is theirs to see: 412).
ATTEMPTS = 3


def write_scope(principal: Principal, layer: Layer, action: str) -> Scope:
    """The townships `principal` may `action` ('create', 'update', 'delete') in `layer`.

    Raises Unauthorized for a caller who is not logged in (logging in may help) and Forbidden for one whose
    role may not write the layer (Layer.writers) or has no township to write in.
    """
    scope = scope_for(principal, layer, action)
    if not scope.empty:
        return scope
    if principal.is_anonymous:
        raise Unauthorized(f"log in to {action} features of {layer.id!r}", parameter="Authorization")
    raise Forbidden(f"you may not {action} features of {layer.id!r}", parameter="collectionId")


def owned_properties(layer: Layer) -> tuple[Property, ...]:
    """The layer's properties that only a workflow changes."""
    return tuple(p for p in layer.properties if p.set_by)


def create(store: Store, principal: Principal, layer: Layer, feature: Feature, *,
           workflow: dict[str, object] | None = None) -> Feature:
    """Insert one feature as `principal`, then run its layer's create workflow in the same transaction.

    Workflow-owned properties start at their initial values (the workflow may then set them, e.g. an event's
    deadline from its type). A body may leave them out or give the initial value; any other value is a
    Conflict naming the property. `workflow` holds owned values the calling workflow itself sets (a finding
    on a task names its task).
    """
    scope = write_scope(principal, layer, "create")
    feature = check_feature(layer, feature)
    props = dict(feature.properties)
    for p in owned_properties(layer):
        given = props.get(p.name)
        if given is not None and given != p.initial:
            start = "empty" if p.initial is None else repr(p.initial)
            raise Conflict(f"{p.name} of a new feature of {layer.id!r} is {start}; it is then set by "
                           f"{_how(p, None)}, not by POST", parameter=p.name)
        props[p.name] = p.initial
    for name, value in (workflow or {}).items():
        if name not in {p.name for p in owned_properties(layer)}:
            raise ValueError(f"{name!r} is not a workflow-owned property of {layer.id!r}")
        props[name] = value
    with store.transaction(actor=principal.username):  # the workflow's rows commit with the feature
        ready = workflows.before_create(store, principal, layer.id, Feature(feature.id, feature.geometry, props))
        [stored] = store.insert(layer.id, [ready], scope)
        return workflows.after_create(store, principal, layer.id, stored)


def update(store: Store, principal: Principal, layer: Layer, fid: int, feature: Feature, *, partial: bool,
           if_match: str | None = None) -> Feature:
    """Replace (or with `partial`, patch) one feature as `principal`, keeping workflow-owned properties.

    A replace that leaves an owned property out keeps its stored value; giving the stored value is fine;
    changing it is a Conflict naming the property and what changes it instead.
    """
    scope = write_scope(principal, layer, "update")
    change = check_feature(layer, feature, partial=partial)
    owned = owned_properties(layer)
    with store.transaction(actor=principal.username):
        if not owned and not layer.geometry_set_by:
            return store.update(layer.id, fid, change, scope, partial=partial, if_match=if_match)
        # Compare with the stored feature, then write only if it is still that version (its ETag, checked
        # under the store's row lock): on PostGIS another process may commit between this read and the write
        # (the GeoPackage holds its write lock from the start), and its action is never overwritten.
        strict = if_match is not None and if_match.strip() != "*"
        for _ in range(ATTEMPTS):
            current = store.get(layer.id, fid, scope)
            check_etag(current, if_match)
            kept = _keep_owned(owned, current, change, partial)
            _keep_geometry(layer, current, change, partial)
            try:
                return store.update(layer.id, fid, kept, scope, partial=partial, if_match=current.etag())
            except PreconditionFailed:
                if strict:
                    raise
    raise Conflict(f"feature {fid} of {layer.id!r} kept changing while it was written; retry",
                   parameter="featureId")


def delete(store: Store, principal: Principal, layer: Layer, fid: int, *, if_match: str | None = None) -> None:
    """Delete one feature as `principal`."""
    scope = write_scope(principal, layer, "delete")
    with store.transaction(actor=principal.username):
        store.delete(layer.id, fid, scope, if_match=if_match)


def _keep_owned(owned: tuple[Property, ...], current: Feature, change: Feature, partial: bool) -> Feature:
    props = dict(change.properties)
    for p in owned:
        stored = current.properties.get(p.name)
        if p.name in props:
            if props[p.name] != stored:
                raise Conflict(f"{p.name} is set by {_how(p, current.id)}, not by {'PATCH' if partial else 'PUT'}",
                               parameter=p.name)
        elif not partial:
            props[p.name] = stored  # a replace keeps what the workflow set
    return Feature(change.id, change.geometry, props)


# A geometry sent back within this many degrees (about a centimetre) of the stored one is the same point (a
# client that read it in another CRS and wrote it back unchanged).
SAME_PLACE = 1e-7


def _keep_geometry(layer: Layer, current: Feature, change: Feature, partial: bool) -> None:
    """Conflict naming `geometry` when a write would move a feature whose geometry its workflow owns."""
    if not layer.geometry_set_by or change.geometry is None or current.geometry is None:
        return
    if not change.geometry.equals_exact(current.geometry, SAME_PLACE):
        how = layer.geometry_set_by.replace("{id}", str(current.id))
        raise Conflict(f"the geometry is moved by {how}, not by {'PATCH' if partial else 'PUT'}",
                       parameter="geometry")


def _how(prop: Property, fid: int | None) -> str:
    """The property's `set_by`, with the feature's id filled in where it is known."""
    text = prop.set_by or ""
    return text.replace("{id}", str(fid)) if fid is not None else text
