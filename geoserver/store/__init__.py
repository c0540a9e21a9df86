"""Stores: the one interface to persisted features, and the setting that picks an implementation."""

from __future__ import annotations

from geoserver.catalog import Catalog
from geoserver.store.base import (
    AccountState,
    ApiKeyRecord,
    Columns,
    Extent,
    IdempotencyRecord,
    Location,
    LoginFailures,
    Store,
    UserRecord,
)

__all__ = ["AccountState", "ApiKeyRecord", "Columns", "Extent", "IdempotencyRecord", "Location", "LoginFailures", "Store",
           "UserRecord", "open_store"]


def open_store(database: str, catalog: Catalog) -> Store:
    """The store named by `database`: a `postgresql://` URL or a path to a GeoPackage file."""
    if database.startswith(("postgresql://", "postgres://")):
        from geoserver.store.postgis import PostGISStore

        return PostGISStore(database, catalog)
    from geoserver.store.embedded import EmbeddedStore

    return EmbeddedStore(database, catalog)
