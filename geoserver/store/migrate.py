"""Versioned SQL migrations for the PostGIS store, and the check that the schema matches the catalog.

Migrations are the files `migrations/NNNN_name.sql`, applied in order, each at most once, all inside one
transaction under an advisory lock (so several processes starting together cannot race), and recorded in
`schema_migrations`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from geoserver.catalog import Catalog, Layer
from geoserver.store import h3cells

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any fixed number works; it only has to be the same in every process (it spells "onemap").
ADVISORY_LOCK_KEY = 0x6F6E656D6170
# The generated Web Mercator copy of a Layer.mercator_copy geometry (migration 0019), read by tiles.
MERCATOR_COLUMN = "geom_3857"
UPGRADE_HINT = "run `onemap db upgrade --database <url>` to create or upgrade it"

SQL_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "datetime": "timestamp with time zone",
    "date": "date",
    "json": "jsonb",
    "binary": "bytea",
}


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    path: Path

    def sql(self) -> str:
        """The file's SQL text."""
        return self.path.read_text(encoding="utf-8")


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in the directory, in version order (names must be `NNNN_name.sql`, versions unique)."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if not m:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations share version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, m.group(2), path)
    return [found[v] for v in sorted(found)]


def upgrade(conn: psycopg.Connection) -> list[int]:
    """Apply the pending migrations in one transaction; returns the versions applied (empty if none)."""
    applied_now: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            # A file of ours, never request text; several statements run in one simple-protocol call.
            conn.execute(migration.sql())  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [migration.version])
            applied_now.append(migration.version)
    return applied_now


def schema_version(conn: psycopg.Connection) -> int | None:
    """The newest applied migration, or None when the database has never been migrated."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return row[0] if row else None


def expected_columns(layer: Layer) -> dict[str, tuple[str, bool]]:
    """The columns a layer's table must have: name -> (SQL type as format_type spells it, NOT NULL)."""
    cols = {
        "fid": ("bigint", True),
        "geom": (f"geometry({layer.geometry_type},4326)", True),
    }
    for p in layer.properties:
        cols[p.name] = (SQL_TYPES[p.type], p.required)
    if layer.h3_cells:
        cols[h3cells.COLUMN] = ("bytea", False)
    if layer.mercator_copy:
        cols[MERCATOR_COLUMN] = (f"geometry({layer.geometry_type},3857)", False)
    return cols


def actual_columns(conn: psycopg.Connection, table: str) -> dict[str, tuple[str, bool]]:
    """The columns a table has: name -> (format_type, NOT NULL); empty if there is no such table."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull"
        " FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        [f'"{table}"'],
    ).fetchall()
    return {name: (sqltype, notnull) for name, sqltype, notnull in rows}


def schema_drift(conn: psycopg.Connection, catalog: Catalog) -> list[str]:
    """Every difference between the catalog's declarations and the migrated tables (empty when they agree)."""
    problems: list[str] = []
    for layer in catalog:
        want = expected_columns(layer)
        have = actual_columns(conn, layer.id)
        if not have:
            problems.append(f"table {layer.id!r} is missing")
            continue
        for name, spec in want.items():
            if name not in have:
                problems.append(f"{layer.id}.{name} is missing (declared {spec[0]})")
            elif have[name] != spec:
                problems.append(f"{layer.id}.{name} is {_spell(have[name])}, the catalog declares {_spell(spec)}")
        for name in have.keys() - want.keys():
            problems.append(f"{layer.id}.{name} exists but is not declared")
    for table in catalog.tables:
        have = actual_columns(conn, table.id)
        if not have:
            problems.append(f"table {table.id!r} is missing")
            continue
        want = {"id": ("bigint", True), **{c.name: (SQL_TYPES[c.type], c.required) for c in table.columns}}
        for name, spec in want.items():
            if name not in have:
                problems.append(f"{table.id}.{name} is missing (declared {spec[0]})")
            elif have[name] != spec:
                problems.append(f"{table.id}.{name} is {_spell(have[name])}, the catalog declares {_spell(spec)}")
        for name in have.keys() - want.keys():
            problems.append(f"{table.id}.{name} exists but is not declared")
    return problems


def _spell(spec: tuple[str, bool]) -> str:
    return spec[0] + (" NOT NULL" if spec[1] else "")
