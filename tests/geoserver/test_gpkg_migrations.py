"""GeoPackage schema steps: a county file written by the release before numbered steps is brought up to date
by `onemap db upgrade` without losing a row, and a file that drifted from the catalog is refused by name."""

from __future__ import annotations

import sqlite3

import pytest
from shapely.geometry import MultiPolygon, Point, box

from api.cli import main
from geoserver.access import Scope
from geoserver.errors import StoreUnavailable
from geoserver.features import Feature
from geoserver.store import gpkg, gpkg_migrations
from geoserver.store.embedded import EmbeddedStore


def _previous_release_file(path, catalog) -> None:
    """What the store wrote before this change: the layer tables, accounts and keys, no step table, no log."""
    conn = sqlite3.connect(path, isolation_level=None)
    gpkg.register_functions(conn)
    conn.execute("BEGIN")
    gpkg_migrations.upgrade(conn, catalog, upto=1)
    conn.execute("DROP TABLE onemap_migrations")
    conn.execute("DELETE FROM gpkg_contents WHERE table_name = 'onemap_migrations'")
    conn.execute('INSERT INTO "townships" ("fid", "geom", "township_code", "name", "kind") VALUES (?, ?, ?, ?, ?)',
                 (1, gpkg.encode(MultiPolygon([box(100.6, 32.8, 100.7, 32.9)])), "632626100", "West", "township"))
    conn.execute('INSERT INTO "users" (username, role, password_hash) VALUES (?, ?, ?)', ("admin", "admin", "x"))
    conn.execute("COMMIT")
    conn.close()


def test_db_upgrade_brings_a_previous_release_file_up_to_date_keeping_every_row(tmp_path, catalog, capsys):
    path = tmp_path / "county.gpkg"
    _previous_release_file(path, catalog)
    assert main(["db", "upgrade", "--database", str(path)]) == 0
    conn = sqlite3.connect(path)
    assert gpkg_migrations.schema_version(conn) == gpkg_migrations.LATEST
    assert conn.execute('SELECT "name" FROM "townships"').fetchall() == [("West",)]
    assert conn.execute("SELECT username FROM users").fetchall() == [("admin",)]
    steps = conn.execute("SELECT version, name FROM onemap_migrations ORDER BY version").fetchall()
    assert steps[:6] == [(1, "initial"), (2, "change_log"), (3, "dispatch"), (4, "rejected_readings"),
                         (5, "patrols"), (6, "account_lifecycle")]
    assert steps == [(version, name) for version, name, _ in gpkg_migrations.STEPS]  # and every later one
    indexes = {r[1] for r in conn.execute("PRAGMA index_list('track_points')")}
    assert {"idx_track_points_patrol", "idx_track_points_patrol_key"} <= indexes
    conn.close()
    store = EmbeddedStore(path, catalog)
    store.open()
    try:
        [made] = store.insert("events", [Feature(None, Point(100.65, 32.85), {
            "title": "after the upgrade", "type": "other", "reported_at": "2024-04-01T00:00:00Z"})],
            Scope.everything())
        assert [(c.op, c.fid, c.township_after) for c in store.changes_since(0)] == [
            ("insert", made.id, "632626100")]
    finally:
        store.close()


def test_upgrading_twice_changes_nothing(tmp_path, catalog):
    path = tmp_path / "county.gpkg"
    store = EmbeddedStore(path, catalog)
    store.initialize()
    store.initialize()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM onemap_migrations").fetchone() == (gpkg_migrations.LATEST,)


def test_a_file_that_drifted_from_the_catalog_is_refused_by_name(tmp_path, catalog):
    path = tmp_path / "county.gpkg"
    EmbeddedStore(path, catalog).initialize()
    conn = sqlite3.connect(path)
    conn.execute('ALTER TABLE "temples" ADD COLUMN "abbot" TEXT')
    conn.commit()
    conn.close()
    with pytest.raises(StoreUnavailable, match=r"temples\.abbot exists but is not declared"):
        EmbeddedStore(path, catalog).initialize()
