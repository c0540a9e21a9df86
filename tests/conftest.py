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
STORE_KINDS = ("embedded", "postgis")


def postgis_url() -> str:
    """The PostGIS database `make test` provisioned (with the sample county loaded)."""
    return os.environ.get("ONEMAP_TEST_POSTGIS", DEFAULT_PG)


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


def _truncate_postgis(url: str, catalog: Catalog) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = ", ".join(f'"{layer.id}"' for layer in catalog)
        conn.execute(f"TRUNCATE {tables}, users, api_keys RESTART IDENTITY")


@pytest.fixture(params=STORE_KINDS)
def empty_store(request, catalog, tmp_path, fresh_postgis_url) -> Iterator[Store]:
    """An empty store of each kind (every store-level test runs against both)."""
    store = make_empty_store(request.param, catalog, tmp_path, fresh_postgis_url)
    yield store
    store.close()
