"""OGC GeoPackage plumbing on the standard library: binary geometry, core tables, RTree index, ST_ functions.

Written from the GeoPackage Encoding Standard (OGC 12-128, version 1.3): clause 2.1.3 (binary geometry),
2.1.2/2.1.5/2.1.6 (gpkg_spatial_ref_sys, gpkg_contents, gpkg_geometry_columns), 2.3 (gpkg_extensions) and
Annex F.3 (the RTree spatial index and its triggers).
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoserver.catalog import Layer, PropertyType

APPLICATION_ID = 0x47504B47  # "GPKG"
# GeoPackage 1.3. Not 1.4: Debian 12's GDAL 3.6 (and the QGIS built on it) warns on every open of a 1.4 file
# ("may only be partially supported"); 1.4 changes nothing we use but the RTree triggers' UPSERT fix, and
# this store never upserts into feature tables.
USER_VERSION = 10300
SRS_ID = 4326
GEOM_COLUMN = "geom"
ID_COLUMN = "fid"

WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]]'
)

GEOMETRY_TYPE_NAMES = {
    "Point": "POINT", "LineString": "LINESTRING", "Polygon": "POLYGON",
    "MultiPoint": "MULTIPOINT", "MultiLineString": "MULTILINESTRING", "MultiPolygon": "MULTIPOLYGON",
}
COLUMN_TYPES: dict[PropertyType, str] = {
    "string": "TEXT", "integer": "INTEGER", "number": "REAL", "boolean": "BOOLEAN",
    "datetime": "DATETIME", "date": "DATE", "json": "TEXT", "binary": "BLOB",
}

# -- GeoPackage binary geometry --------------------------------------------------------------------------
# Header: magic "GP", version 0, flags, srs_id (int32), envelope (0/4/6/6/8 doubles), then standard WKB.
# Flags: bit 0 byte order of the header (1 = little endian), bits 1-3 envelope kind, bit 4 empty,
# bit 5 extended geometry.
_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}
_FLAGS_XY_LE = 0b0000_0011  # little endian, envelope [minx, maxx, miny, maxy]
_FLAGS_EMPTY_LE = 0b0001_0001  # little endian, no envelope, empty geometry
_HEAD_XY = struct.Struct("<2sBBi4d")
_HEAD_NONE = struct.Struct("<2sBBi")


def encode(geometry: BaseGeometry, srs_id: int = SRS_ID) -> bytes:
    """The GeoPackage binary of a shapely geometry (xy envelope, little endian, 2D WKB)."""
    wkb = shapely.to_wkb(geometry, output_dimension=2, byte_order=1)
    if geometry.is_empty:
        return _HEAD_NONE.pack(b"GP", 0, _FLAGS_EMPTY_LE, srs_id) + wkb
    minx, miny, maxx, maxy = geometry.bounds
    return _HEAD_XY.pack(b"GP", 0, _FLAGS_XY_LE, srs_id, minx, maxx, miny, maxy) + wkb


def encode_many(geometries: Sequence[BaseGeometry], srs_id: int = SRS_ID) -> list[bytes]:
    """GeoPackage binaries of many non-empty geometries, WKB and bounds computed in one go."""
    arr = np.asarray(geometries, dtype=object)
    if not len(arr):
        return []
    wkbs = shapely.to_wkb(arr, output_dimension=2, byte_order=1)
    bounds = shapely.bounds(arr).tolist()
    pack = _HEAD_XY.pack
    return [pack(b"GP", 0, _FLAGS_XY_LE, srs_id, b[0], b[2], b[1], b[3]) + w for w, b in zip(wkbs, bounds, strict=True)]


def _header(blob: bytes) -> tuple[int, int, tuple[float, ...] | None, bool]:
    """(WKB offset, srs_id, envelope [minx, maxx, miny, maxy, ...] or None, empty flag) of a blob."""
    if len(blob) < 8 or blob[0:2] != b"GP":
        raise ValueError("not a GeoPackage geometry (missing 'GP' magic)")
    flags = blob[3]
    order = "<" if flags & 1 else ">"
    kind = (flags >> 1) & 0b111
    if kind not in _ENVELOPE_DOUBLES:
        raise ValueError(f"invalid GeoPackage envelope indicator {kind}")
    n = _ENVELOPE_DOUBLES[kind]
    (srs_id,) = struct.unpack_from(order + "i", blob, 4)
    envelope = struct.unpack_from(f"{order}{n}d", blob, 8) if n else None
    return 8 + 8 * n, srs_id, envelope, bool(flags & 0b1_0000)


def decode(blob: bytes | None) -> BaseGeometry | None:
    """The shapely geometry of a GeoPackage binary (None for SQL NULL)."""
    if blob is None:
        return None
    offset = _header(blob)[0]
    return shapely.from_wkb(blob[offset:])


def decode_many(blobs: Sequence[bytes | None]) -> list[BaseGeometry | None]:
    """Shapely geometries of many GeoPackage binaries, WKB parsed in one go."""
    wkbs = [None if b is None else b[_header(b)[0]:] for b in blobs]
    if not wkbs:
        return []
    return list(shapely.from_wkb(np.asarray(wkbs, dtype=object)))


@lru_cache(maxsize=1024)
def envelope(blob: bytes) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a GeoPackage binary; from its header, else from its WKB; None if empty."""
    offset, _, env, empty = _header(blob)
    if empty:
        return None
    if env is not None and not any(math.isnan(v) for v in env[:4]):
        return env[0], env[1], env[2], env[3]
    geom = shapely.from_wkb(blob[offset:])
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


# -- SQL functions the RTree triggers call (GeoPackage Annex F.3) --------------------------------------
def _st_is_empty(blob: bytes | None) -> int | None:
    return None if blob is None else int(envelope(blob) is None)


def _st_bound(index: int):
    def fn(blob: bytes | None) -> float | None:
        if blob is None:
            return None
        env = envelope(blob)
        return None if env is None else env[index]

    return fn


def register_functions(conn: sqlite3.Connection) -> None:
    """Register ST_IsEmpty, ST_MinX, ST_MaxX, ST_MinY, ST_MaxY (the RTree triggers need them)."""
    conn.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _st_bound(i), deterministic=True)


# -- core tables -------------------------------------------------------------------------------------------
_CORE_DDL = (
    """CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL PRIMARY KEY,
  organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL,
  definition TEXT NOT NULL,
  description TEXT
)""",
    """CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY,
  data_type TEXT NOT NULL,
  identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE,
  min_y DOUBLE,
  max_x DOUBLE,
  max_y DOUBLE,
  srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
)""",
    """CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL,
  m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
)""",
    """CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT,
  column_name TEXT,
  extension_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
)""",
)
_SRS_ROWS = (
    ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
    ("WGS 84 geodetic", 4326, "EPSG", 4326, WGS84_WKT,
     "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"),
)
RTREE_EXTENSION = ("gpkg_rtree_index", "http://www.geopackage.org/spec120/#extension_rtree", "write-only")


def create_core(conn: sqlite3.Connection) -> None:
    """Mark the file as a GeoPackage 1.3 and create the required metadata tables and SRS rows."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {USER_VERSION}")
    for ddl in _CORE_DDL:
        conn.execute(ddl)
    conn.executemany("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", _SRS_ROWS)


def q(identifier: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def rtree_name(table: str) -> str:
    """The RTree virtual table indexing `table`'s geometry column."""
    return f"rtree_{table}_{GEOM_COLUMN}"


def feature_table_ddl(layer: Layer) -> str:
    """CREATE TABLE for a layer: fid, typed geometry column, one typed column per declared property."""
    cols = [f"{q(ID_COLUMN)} INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL",
            f"{q(GEOM_COLUMN)} {GEOMETRY_TYPE_NAMES[layer.geometry_type]}"]
    cols += [f"{q(p.name)} {COLUMN_TYPES[p.type]}" for p in layer.properties]
    return f"CREATE TABLE IF NOT EXISTS {q(layer.id)} (\n  " + ",\n  ".join(cols) + "\n)"


def _rtree_triggers(t: str) -> dict[str, str]:
    """The Annex F.3 triggers (GeoPackage 1.2/1.3 set) keeping rtree_<t>_geom in step with table <t>."""
    r, c, i = q(rtree_name(t)), q(GEOM_COLUMN), q(ID_COLUMN)
    tt = q(t)
    values = f"NEW.{i}, ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c})"
    nonempty_new = f"(NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c}))"
    empty_new = f"(NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c}))"

    def name(suffix: str) -> str:
        return q(f"{rtree_name(t)}_{suffix}")

    ddl = [
        f"""CREATE TRIGGER IF NOT EXISTS {name('insert')} AFTER INSERT ON {tt}
  WHEN (new.{c} NOT NULL AND NOT ST_IsEmpty(NEW.{c}))
BEGIN
  INSERT OR REPLACE INTO {r} VALUES ({values});
END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name('update1')} AFTER UPDATE OF {c} ON {tt}
  WHEN OLD.{i} = NEW.{i} AND {nonempty_new}
BEGIN
  INSERT OR REPLACE INTO {r} VALUES ({values});
END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name('update2')} AFTER UPDATE OF {c} ON {tt}
  WHEN OLD.{i} = NEW.{i} AND {empty_new}
BEGIN
  DELETE FROM {r} WHERE id = OLD.{i};
END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name('update3')} AFTER UPDATE ON {tt}
  WHEN OLD.{i} != NEW.{i} AND {nonempty_new}
BEGIN
  DELETE FROM {r} WHERE id = OLD.{i};
  INSERT OR REPLACE INTO {r} VALUES ({values});
END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name('update4')} AFTER UPDATE ON {tt}
  WHEN OLD.{i} != NEW.{i} AND {empty_new}
BEGIN
  DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i});
END""",
        f"""CREATE TRIGGER IF NOT EXISTS {name('delete')} AFTER DELETE ON {tt}
  WHEN old.{c} NOT NULL
BEGIN
  DELETE FROM {r} WHERE id = OLD.{i};
END""",
    ]
    events = ("insert", "update1", "update2", "update3", "update4", "delete")
    return dict(zip(events, ddl, strict=True))


def create_feature_table(conn: sqlite3.Connection, layer: Layer) -> None:
    """Create (or complete) a layer's feature table, register it, and give it an RTree index."""
    t = layer.id
    conn.execute(feature_table_ddl(layer))
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({q(t)})")}
    for p in layer.properties:  # a property declared after the file was made: add its column
        if p.name not in have:
            conn.execute(f"ALTER TABLE {q(t)} ADD COLUMN {q(p.name)} {COLUMN_TYPES[p.type]}")
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) "
        "VALUES (?, 'features', ?, ?, ?)", (t, layer.title, layer.description, SRS_ID))
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, 0, 0)",
        (t, GEOM_COLUMN, GEOMETRY_TYPE_NAMES[layer.geometry_type], SRS_ID))
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_extensions VALUES (?, ?, ?, ?, ?)", (t, GEOM_COLUMN, *RTREE_EXTENSION))
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree_name(t),)).fetchone()
    if not exists:
        conn.execute(f"CREATE VIRTUAL TABLE {q(rtree_name(t))} USING rtree(id, minx, maxx, miny, maxy)")
        conn.execute(
            f"INSERT OR REPLACE INTO {q(rtree_name(t))} SELECT {q(ID_COLUMN)}, ST_MinX({q(GEOM_COLUMN)}), "
            f"ST_MaxX({q(GEOM_COLUMN)}), ST_MinY({q(GEOM_COLUMN)}), ST_MaxY({q(GEOM_COLUMN)}) FROM {q(t)} "
            f"WHERE {q(GEOM_COLUMN)} NOT NULL AND NOT ST_IsEmpty({q(GEOM_COLUMN)})")
    for ddl in _rtree_triggers(t).values():
        conn.execute(ddl)


@contextmanager
def rtree_triggers_off(conn: sqlite3.Connection, table: str, events: Sequence[str]) -> Iterator[None]:
    """Inside the caller's transaction, drop some RTree triggers and put them back on the way out.

    For bulk loads that fill the RTree themselves (from bounds computed in one go) instead of through five
    SQL function calls per row. On an error the caller rolls back, which restores the triggers too.
    """
    triggers = _rtree_triggers(table)
    for event in events:
        conn.execute(f"DROP TRIGGER IF EXISTS {q(f'{rtree_name(table)}_{event}')}")
    yield
    for event in events:
        conn.execute(triggers[event])


def register_attributes(conn: sqlite3.Connection, table: str, description: str) -> None:
    """Register a non-spatial table in gpkg_contents (data_type 'attributes')."""
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
        "VALUES (?, 'attributes', ?, ?)", (table, table, description))


def touch_contents(conn: sqlite3.Connection, table: str, bounds: tuple[float, float, float, float] | None,
                   *, grow: bool) -> None:
    """Stamp last_change; set the bounds (or, with `grow`, widen the stored bounds to include them)."""
    stamp = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
    if bounds is None:
        conn.execute(f"UPDATE gpkg_contents SET last_change = {stamp} WHERE table_name = ?", (table,))
        return
    minx, miny, maxx, maxy = bounds
    if grow:
        sql = (f"UPDATE gpkg_contents SET last_change = {stamp}, min_x = min(coalesce(min_x, ?1), ?1), "
               "min_y = min(coalesce(min_y, ?2), ?2), max_x = max(coalesce(max_x, ?3), ?3), "
               "max_y = max(coalesce(max_y, ?4), ?4) WHERE table_name = ?5")
    else:
        sql = (f"UPDATE gpkg_contents SET last_change = {stamp}, min_x = ?1, min_y = ?2, max_x = ?3, "
               "max_y = ?4 WHERE table_name = ?5")
    conn.execute(sql, (minx, miny, maxx, maxy, table))
