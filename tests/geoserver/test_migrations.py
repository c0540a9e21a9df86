"""The PostGIS schema comes from versioned migrations and matches the layer declarations exactly."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
import shapely

from geoserver.access import Scope
from geoserver.catalog import Catalog, Property
from geoserver.errors import StoreUnavailable
from geoserver.features import Feature, FeatureQuery
from geoserver.store import migrate
from geoserver.store.postgis import PostGISStore
from tests.conftest import make_empty_store

# Written out here rather than imported, so the test does not share the code it checks.
PG_TYPES = {
    "string": ("text", "text"),
    "integer": ("bigint", "int8"),
    "number": ("double precision", "float8"),
    "boolean": ("boolean", "bool"),
    "datetime": ("timestamp with time zone", "timestamptz"),
    "date": ("date", "date"),
}
BRIN_LAYERS = {"track_points", "readings"}


@pytest.fixture
def pg(catalog, tmp_path, fresh_postgis_url):
    store = make_empty_store("postgis", catalog, tmp_path, fresh_postgis_url)
    yield store
    store.close()


@pytest.fixture
def db(pg, fresh_postgis_url):
    with psycopg.connect(fresh_postgis_url, autocommit=True) as conn:
        yield conn


def test_every_layer_table_has_exactly_the_declared_columns_and_types(pg, db, catalog):
    for layer in catalog:
        rows = db.execute(
            "SELECT column_name, data_type, udt_name, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position", [layer.id]
        ).fetchall()
        have = {name: (data_type, udt, nullable == "NO") for name, data_type, udt, nullable in rows}
        want = {"fid": ("bigint", "int8", True), "geom": ("USER-DEFINED", "geometry", True)}
        for p in layer.properties:
            want[p.name] = (*PG_TYPES[p.type], p.required)
        if layer.h3_cells:  # the heat map's cells, kept by the store (geoserver/store/h3cells.py)
            want["h3_cells"] = ("bytea", "bytea", False)
        assert have == want, layer.id


def test_every_geometry_column_has_the_declared_type_in_epsg_4326(pg, db, catalog):
    found = dict(db.execute(
        "SELECT f_table_name, type || ':' || srid FROM geometry_columns WHERE f_geometry_column = 'geom'"
    ).fetchall())
    for layer in catalog:
        assert found[layer.id] == f"{layer.geometry_type.upper()}:4326", layer.id


def test_ids_are_identity_columns_and_the_keys_are_indexed(pg, db, catalog):
    for layer in catalog:
        identity = db.execute(
            "SELECT is_identity FROM information_schema.columns WHERE table_name = %s AND column_name = 'fid'",
            [layer.id]).fetchone()
        assert identity == ("YES",), layer.id
        indexes = {
            (column, method) for column, method in db.execute(
                "SELECT a.attname, am.amname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_am am ON am.oid = i.relam"
                " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]"
                " WHERE x.indrelid = %s::regclass", [layer.id]).fetchall()
        }
        assert ("geom", "gist") in indexes, layer.id
        assert ("township_code", "btree") in indexes, layer.id
        if layer.has_grid:  # GPS fixes are written by the thousand and never read by grid (0018)
            assert (("grid_code", "btree") in indexes) == (layer.id != "track_points"), layer.id
        if layer.time_field:
            method = "brin" if layer.id in BRIN_LAYERS else "btree"
            assert (layer.time_field, method) in indexes, layer.id


def test_accounts_tables_exist_with_their_keys(pg, db):
    cols = dict(db.execute(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = 'users'").fetchall())
    assert cols == {"username": "text", "role": "text", "password_hash": "text", "display_name": "text",
                    "townships": "_text", "grids": "_text", "department": "text", "extra": "jsonb",
                    "disabled": "bool", "auth_version": "int4"}
    fk = db.execute(
        "SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = 'api_keys'::regclass"
        " AND contype = 'f'").fetchone()
    assert fk == ("users",)


def test_migrations_are_numbered_from_one_without_gaps():
    versions = [m.version for m in migrate.migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_initialize_twice_is_harmless_and_keeps_the_data(pg, db):
    pg.insert("pois", [Feature(None, shapely.Point(100.7, 32.9), {"name": "Hall", "category": "service_hall"})],
              Scope.everything())
    before = db.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()
    pg.initialize()
    pg.initialize()
    after = db.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert after == before
    assert [v for v, _ in after] == [m.version for m in migrate.migrations()]
    page = pg.query("pois", FeatureQuery(), Scope.everything())
    assert page.number_matched == 1 and page.features[0].properties["name"] == "Hall"
    assert pg.health()["schema_version"] == migrate.migrations()[-1].version


def test_a_catalog_that_drifted_from_the_schema_is_refused_by_name(pg, catalog, fresh_postgis_url):
    pois = catalog.get("pois")
    changed = dataclasses.replace(pois, properties=tuple(
        Property(p.name, "integer") if p.name == "phone" else p for p in pois.properties))
    extra = dataclasses.replace(pois, id="wells")
    layers = [changed if layer.id == "pois" else layer for layer in catalog] + [extra]
    with PostGISStore(fresh_postgis_url, Catalog(layers)) as drifted:
        with pytest.raises(StoreUnavailable) as err:
            drifted.initialize()
    message = str(err.value)
    assert "pois.phone is text, the catalog declares bigint" in message
    assert "table 'wells' is missing" in message


def test_a_database_without_the_schema_says_to_run_db_upgrade(pg, catalog, fresh_postgis_url):
    bare = fresh_postgis_url.rsplit("/", 1)[0] + "/postgres"  # exists everywhere, never migrated
    with PostGISStore(bare, catalog) as store:
        with pytest.raises(StoreUnavailable, match="onemap db upgrade"):
            store.query("events", FeatureQuery(), Scope.everything())
        with pytest.raises(StoreUnavailable, match="onemap db upgrade"):
            store.health()
