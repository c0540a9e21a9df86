"""What a layer's workflow adds to an API create, inside the create's own transaction (a report of an event
is checked against its type, gets its deadline and its first timeline rows)."""

from __future__ import annotations

from geoserver.access import Principal, Scope
from geoserver.features import Feature
from geoserver.store import Store
from layers import dispatch

AFTER_CREATE = {"events": dispatch.on_report}


def after_create(store: Store, principal: Principal, layer_id: str, feature: Feature) -> Feature:
    """Run the layer's create workflow on a just-inserted feature; returns the feature as it is now."""
    step = AFTER_CREATE.get(layer_id)
    if step is None:
        return feature
    step(store, principal, feature)
    return store.get(layer_id, feature.id, Scope.everything())
