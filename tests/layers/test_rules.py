"""layers/rules.py on both stores: a dispatch action landing between a replace's read and write is never undone."""

from __future__ import annotations

import pytest

from geoserver.access import Principal, Scope
from geoserver.errors import PreconditionFailed
from geoserver.features import Feature, FeatureQuery
from layers import rules
from tests.api import county

WORKER = Principal("worker-A1", "worker", townships=frozenset({"A"}), grids=frozenset({"A1"}))


class ActionBetweenReadAndWrite:
    """The real store, except that right after the first read of a feature a dispatch action accepts it.

    That is the interleaving two server processes can produce: the action commits while a replace is
    between comparing and writing.
    """

    def __init__(self, store) -> None:
        self.store = store
        self.acted = False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get(self, layer_id: str, fid: int, scope: Scope) -> Feature:
        feature = self.store.get(layer_id, fid, scope)
        if not self.acted:
            self.acted = True
            self.store.update(layer_id, fid, Feature(None, None, {"status": "accepted"}), Scope.everything(),
                              partial=True)
        return feature


@pytest.fixture
def store(empty_store):
    county.fill(empty_store)
    return empty_store


def _event_in_a(store) -> Feature:
    page = store.query("events", FeatureQuery(limit=100), Scope.of({"A"}))
    return page.features[0]


def test_a_replace_racing_a_dispatch_action_keeps_the_actions_state(store):
    event = _event_in_a(store)
    layer = store.catalog.get("events")
    body = {k: v for k, v in event.properties.items() if k != "status"} | {"title": "renamed"}
    raced = ActionBetweenReadAndWrite(store)
    written = rules.update(raced, WORKER, layer, event.id, Feature(None, event.geometry, body), partial=False)
    assert raced.acted
    assert written.properties["status"] == "accepted" and written.properties["title"] == "renamed"
    assert store.get("events", event.id, Scope.everything()).properties["status"] == "accepted"


def test_with_the_callers_own_if_match_the_race_is_theirs_to_see(store):
    event = _event_in_a(store)
    layer = store.catalog.get("events")
    raced = ActionBetweenReadAndWrite(store)
    with pytest.raises(PreconditionFailed):
        rules.update(raced, WORKER, layer, event.id, Feature(None, None, {"title": "renamed"}), partial=True,
                     if_match=event.etag())
    stored = store.get("events", event.id, Scope.everything())
    assert stored.properties["status"] == "accepted" and stored.properties["title"] == event.properties["title"]
