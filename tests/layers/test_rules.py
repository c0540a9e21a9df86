"""layers/rules.py on both stores: a dispatch action committed while a replace is under way is never undone."""

from __future__ import annotations

import threading

import pytest

from geoserver.access import Principal, Scope
from geoserver.features import Feature, FeatureQuery
from layers import rules
from tests.api import county

WORKER = Principal("worker-A1", "worker", townships=frozenset({"A"}), grids=frozenset({"A1"}))


class ActionDuringTheReplace:
    """The real store, except that right after the replace first reads the event, a dispatch action accepts it
    in a transaction of its own (another thread, as another server process would).

    On PostGIS the action commits before the replace writes (nothing locks the row yet); on the GeoPackage it
    waits for the replace's write lock and commits after it. Either way both must survive.
    """

    def __init__(self, store) -> None:
        self.store = store
        self.action: threading.Thread | None = None
        self.failure: BaseException | None = None

    def __getattr__(self, name):
        return getattr(self.store, name)

    def _accept(self, fid: int) -> None:
        try:
            with self.store.transaction(actor="dispatcher"):
                self.store.update("events", fid, Feature(None, None, {"status": "accepted"}), Scope.everything(),
                                  partial=True)
        except BaseException as exc:  # seen by the test, not lost in the thread
            self.failure = exc

    def get(self, layer_id: str, fid: int, scope: Scope) -> Feature:
        feature = self.store.get(layer_id, fid, scope)
        if self.action is None:
            self.action = threading.Thread(target=self._accept, args=(fid,))
            self.action.start()
            self.action.join(timeout=1.0)  # done on PostGIS; on the GeoPackage it waits for our lock
        return feature


@pytest.fixture
def store(empty_store):
    county.fill(empty_store)
    return empty_store


def test_a_replace_and_a_dispatch_action_at_the_same_time_both_land(store):
    event = store.query("events", FeatureQuery(limit=1), Scope.of({"A"})).features[0]
    layer = store.catalog.get("events")
    body = {k: v for k, v in event.properties.items() if k != "status"} | {"title": "renamed"}
    raced = ActionDuringTheReplace(store)
    rules.update(raced, WORKER, layer, event.id, Feature(None, event.geometry, body), partial=False)
    raced.action.join()
    assert raced.failure is None
    stored = store.get("events", event.id, Scope.everything())
    assert stored.properties["status"] == "accepted" and stored.properties["title"] == "renamed"


def test_each_rule_bound_write_is_logged_under_the_callers_name(store):
    event = store.query("events", FeatureQuery(limit=1), Scope.of({"A"})).features[0]
    layer = store.catalog.get("events")
    _, latest = store.change_bounds()
    rules.update(store, WORKER, layer, event.id, Feature(None, None, {"title": "renamed"}), partial=True)
    made = rules.create(store, WORKER, layer, Feature(None, event.geometry, {
        "title": "new", "type": "garbage", "reported_at": event.properties["reported_at"]}))
    rules.delete(store, Principal("admin", "admin"), layer, made.id)
    logged = store.changes_since(latest)
    # The create's workflow (the report's deadline) logs under the reporter too, in the same transaction.
    assert {(c.fid, c.op, c.actor) for c in logged} >= {
        (event.id, "update", "worker-A1"), (made.id, "insert", "worker-A1"), (made.id, "delete", "admin")}
    assert {c.actor for c in logged if c.op != "delete"} == {"worker-A1"}
