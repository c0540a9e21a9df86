"""What only the embedded store has: the GeoPackage binary encoding and the life cycle of its file."""

from __future__ import annotations

import sqlite3
import struct

import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from geoserver.access import Scope
from geoserver.errors import StoreUnavailable
from geoserver.features import FeatureQuery
from geoserver.store import gpkg, open_store


def test_a_geometry_is_encoded_with_the_standard_header_and_envelope():
    line = LineString([(100.6, 32.8), (100.7, 32.95)])
    blob = gpkg.encode(line)
    magic, version, flags, srs_id, minx, maxx, miny, maxy = struct.unpack_from("<2sBBi4d", blob)
    assert (magic, version, flags, srs_id) == (b"GP", 0, 0b0000_0011, 4326)  # little endian, xy envelope
    assert (minx, maxx, miny, maxy) == (100.6, 100.7, 32.8, 32.95)
    assert blob[40:] == shapely.to_wkb(line, byte_order=1)
    assert gpkg.decode(blob).equals(line)
    assert gpkg.decode_many([blob, None, gpkg.encode(Point(1, 2))])[2].equals(Point(1, 2))
    assert gpkg.encode_many([line]) == [blob]


def test_blobs_written_by_others_decode_too():
    point = Point(100.65, 32.85)
    no_envelope = struct.pack("<2sBBi", b"GP", 0, 0b0000_0001, 4326) + shapely.to_wkb(point, byte_order=1)
    big_endian = struct.pack(">2sBBi4d", b"GP", 0, 0b0000_0010, 4326, 1.0, 2.0, 3.0, 4.0) + shapely.to_wkb(
        box(1, 3, 2, 4), byte_order=0)
    assert gpkg.decode(no_envelope).equals(point)
    assert gpkg.envelope(no_envelope) == (100.65, 100.65, 32.85, 32.85)
    assert gpkg.envelope(big_endian) == (1.0, 2.0, 3.0, 4.0)
    empty = gpkg.encode(Polygon())
    assert gpkg.envelope(empty) is None and gpkg.decode(empty).is_empty
    with pytest.raises(ValueError):
        gpkg.decode(b"not a geometry")


def test_the_rtree_functions_read_the_envelope():
    conn = sqlite3.connect(":memory:")
    gpkg.register_functions(conn)
    blob = gpkg.encode(box(1, 2, 3, 4))
    row = conn.execute("SELECT ST_MinX(?1), ST_MaxX(?1), ST_MinY(?1), ST_MaxY(?1), ST_IsEmpty(?1), "
                       "ST_IsEmpty(?2), ST_MinX(NULL)", (blob, gpkg.encode(Point()))).fetchone()
    assert row == (1.0, 3.0, 2.0, 4.0, 0, 1, None)


def test_open_refuses_a_path_whose_directory_does_not_exist(tmp_path, catalog):
    path = tmp_path / "nowhere" / "county.gpkg"
    with pytest.raises(StoreUnavailable) as err:
        open_store(str(path), catalog).open()
    assert str(path) in str(err.value)
    assert not path.parent.exists()


def test_a_missing_file_is_created_by_initialize_only(tmp_path, catalog):
    path = tmp_path / "county.gpkg"
    store = open_store(str(path), catalog)
    store.open()
    assert not path.exists()
    with pytest.raises(StoreUnavailable) as err:
        store.query("events", FeatureQuery(), Scope.everything())
    assert str(path) in str(err.value)
    store.initialize()
    assert store.health() == {"store": "embedded", "path": str(path), "layers": len(catalog)}
    assert store.query("events", FeatureQuery(), Scope.everything()).number_matched == 0
    store.close()
    header = path.read_bytes()[:100]
    assert header[68:72] == b"GPKG"  # application_id
    assert struct.unpack(">I", header[60:64])[0] == gpkg.USER_VERSION


@pytest.mark.parametrize("content", [b"hello, I am a text file" * 10, None])
def test_a_file_that_is_not_a_geopackage_is_refused_clearly(tmp_path, catalog, content):
    path = tmp_path / "other.gpkg"
    if content is None:  # an SQLite database of some other application
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA application_id = 42")
            conn.execute("CREATE TABLE t (x)")
        conn.close()
    else:
        path.write_bytes(content)
    with pytest.raises(StoreUnavailable) as err:
        open_store(str(path), catalog).open()
    assert str(path) in str(err.value)
