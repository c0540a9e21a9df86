"""The access policy on the county catalog: which layers a caller reads, and who may write which layer."""

from __future__ import annotations

import dataclasses

import pytest

from geoserver.access import Principal, Scope, read_scope, readable_layers, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import NotFound


def _ids(principal: Principal, catalog) -> list[str]:
    return [layer.id for layer, _ in readable_layers(principal, catalog)]


def test_anonymous_reads_the_public_layers_only_in_catalog_order(catalog):
    ids = _ids(Principal.anonymous(), catalog)
    assert ids == [layer.id for layer in catalog if layer.public] and ids


def test_a_leader_reads_every_layer_within_his_townships(catalog):
    leader = Principal("leader-A", "leader", townships=frozenset({"A"}))
    got = dict(readable_layers(leader, catalog))
    assert {layer.id for layer in got} == set(catalog.ids)
    assert got[catalog.get("events")] == Scope.of({"A"})
    assert got[catalog.get("townships")].unrestricted  # public


def test_a_department_reads_its_thematic_layer_and_the_public_ones(catalog):
    dept = Principal("dept-religion", "department", townships=frozenset({"A"}), department="religion")
    assert "temples" in _ids(dept, catalog) and "events" not in _ids(dept, catalog)
    with pytest.raises(NotFound) as err:
        read_scope(dept, catalog.get("events"))
    assert err.value.parameter == "collectionId"
    assert read_scope(dept, catalog.get("temples")) == Scope.of({"A"})


def _writable(principal: Principal, catalog, action: str) -> set[str]:
    return {layer.id for layer in catalog if not scope_for(principal, layer, action).empty}


def test_the_layers_a_role_writes_are_the_layers_that_declare_it(catalog):
    worker = Principal("worker-A1", "worker", townships=frozenset({"A"}), grids=frozenset({"A1"}))
    leader = Principal("leader-A", "leader", townships=frozenset({"A"}))
    assert _writable(worker, catalog, "create") == {"events", "patrols", "track_points"}
    assert _writable(worker, catalog, "delete") == set()
    assert _writable(leader, catalog, "update") == {"events"}
    assert _writable(Principal("admin", "admin"), catalog, "delete") == set(catalog.ids)
    assert scope_for(worker, catalog.get("events"), "update") == Scope.of({"A"})


def test_a_layer_naming_an_unknown_writer_role_is_refused_at_start(catalog):
    events = catalog.get("events")
    with pytest.raises(ValueError, match="clerk"):
        Catalog([*catalog, dataclasses.replace(events, id="events2", writers=("worker", "clerk"))])
