"""Fixtures shared by the whole suite: the two stores, over the same data, and the sample county.

PostGIS is never skipped: ONEMAP_TEST_POSTGIS names a server database (default: the local one, as
`make test` provisions it); each test session works in a fresh database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from geoserver.catalog import Catalog
from geoserver.store import Store, open_store
from layers.catalog import build_catalog

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/onemap_test"
# No background job runs in an app a test builds unless the test asks (Settings(jobs=True), or ONEMAP_JOBS=1 in a
# server process's environment): the deadline job would otherwise write into the shared sample county.
os.environ["ONEMAP_JOBS"] = "0"
STORE_KINDS = ("embedded", "postgis")


def postgis_url() -> str:
    """The PostGIS database `make test` provisioned (with the sample county loaded)."""
    return os.environ.get("ONEMAP_TEST_POSTGIS", DEFAULT_PG)


def sample_dir() -> Path:
    """Where `make test` generated the sample county (ONEMAP_SAMPLE_DIR, default data/sample)."""
    return Path(os.environ.get("ONEMAP_SAMPLE_DIR", "data/sample"))


def _server_url(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The county's layer catalog."""
    return build_catalog()


@pytest.fixture(scope="session")
def fresh_postgis_url() -> Iterator[str]:
    """A new, empty PostGIS database for this test session (dropped afterwards)."""
    base = postgis_url()
    name = f"onemap_t_{uuid.uuid4().hex[:10]}"
    admin = _server_url(base, "postgres")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # never a silent skip: PostGIS is part of the product
        pytest.fail(f"PostGIS is not reachable at {admin} ({exc}); run `make test`, which provisions it")
    url = _server_url(base, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_empty_store(kind: str, catalog: Catalog, tmp_path: Path, pg_url: str) -> Store:
    """An opened, initialised, empty store of the given kind."""
    if kind == "embedded":
        store = open_store(str(tmp_path / "test.gpkg"), catalog)
    else:
        store = open_store(pg_url, catalog)
    store.open()
    store.initialize()
    if kind == "postgis":
        _truncate_postgis(pg_url, catalog)
    return store


def filled_database(kind: str, catalog: Catalog, tmp_path: Path, pg_url: str, fill) -> str:
    """A database of the given kind holding what `fill(store)` writes; its gpkg path or PostGIS URL."""
    store = make_empty_store(kind, catalog, tmp_path, pg_url)
    try:
        fill(store)
    finally:
        store.close()
    return str(tmp_path / "test.gpkg") if kind == "embedded" else pg_url


def _truncate_postgis(url: str, catalog: Catalog) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        names = [layer.id for layer in catalog] + [table.id for table in catalog.tables]
        tables = ", ".join(f'"{name}"' for name in names)
        conn.execute(f"TRUNCATE {tables}, users, api_keys, login_failures, idempotency_keys, changes, job_leases RESTART IDENTITY")


@pytest.fixture(params=STORE_KINDS)
def empty_store(request, catalog, tmp_path, fresh_postgis_url) -> Iterator[Store]:
    """An empty store of each kind (every store-level test runs against both)."""
    store = make_empty_store(request.param, catalog, tmp_path, fresh_postgis_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def sample_stores(catalog) -> Iterator[dict[str, Store]]:
    """The generated sample county in both stores: the GeoPackage and the PostGIS database `make test` loads."""
    gpkg = sample_dir() / "county.gpkg"
    if not gpkg.exists():
        pytest.fail(f"no sample county at {gpkg}; run `make test` (it generates and loads it)")
    stores = {"embedded": open_store(str(gpkg), catalog), "postgis": open_store(postgis_url(), catalog)}
    for store in stores.values():
        store.open()
    yield stores
    for store in stores.values():
        store.close()


@pytest.fixture(params=STORE_KINDS)
def sample_store(request, sample_stores) -> Store:
    """The sample county in each store (read-only: tests that write use `empty_store`)."""
    return sample_stores[request.param]
