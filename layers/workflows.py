"""What a layer's workflow adds to an API create, in the create's own transaction: before the insert (a report
of an event is checked against its type and given its status and deadline) and after it (its timeline)."""

from __future__ import annotations

from geoserver.access import Principal
from geoserver.features import Feature
from geoserver.store import Store
from layers import dispatch

BEFORE_CREATE = {"events": lambda store, principal, feature: dispatch.prepare_report(store, feature)}
AFTER_CREATE = {"events": dispatch.on_report}


def before_create(store: Store, principal: Principal, layer_id: str, feature: Feature) -> Feature:
    """The feature as the layer's workflow would store it (BadInput if the workflow refuses it)."""
    step = BEFORE_CREATE.get(layer_id)
    return feature if step is None else step(store, principal, feature)


def after_create(store: Store, principal: Principal, layer_id: str, feature: Feature) -> Feature:
    """Run the layer's workflow on a just-inserted feature (its timeline rows); returns the feature."""
    step = AFTER_CREATE.get(layer_id)
    if step is not None:
        step(store, principal, feature)
    return feature
