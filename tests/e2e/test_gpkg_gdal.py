"""The embedded store's file is a GeoPackage GDAL (Debian gdal-bin) reads, validates and writes as is."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import LineString, MultiPolygon, Point, box

from geoserver.access import Scope
from geoserver.features import Feature, FeatureQuery
from geoserver.store import UserRecord, open_store
from geoserver.store.embedded import EmbeddedStore

pytestmark = pytest.mark.e2e

WEST, EAST = "632626100", "632626200"
GDAL_GEOMETRY = {"Point": "Point", "LineString": "Line String", "Polygon": "Polygon",
                 "MultiPolygon": "Multi Polygon", "MultiPoint": "Multi Point", "MultiLineString": "Multi Line String"}
EXPECTED_COUNTS = {"townships": 2, "grids": 2, "events": 5, "buildings": 2, "patrols": 1, "temples": 1}


def run(*args: str) -> subprocess.CompletedProcess:
    """Run a GDAL command; it must succeed and say nothing on stderr (no warning, no error)."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "CPL_DEBUG": "OFF"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    return done


def open_county(path: Path, catalog) -> EmbeddedStore:
    store = open_store(str(path), catalog)
    store.open()
    return store


@pytest.fixture
def county(tmp_path, catalog) -> Path:
    """A GeoPackage written by the embedded store (then closed, so GDAL sees a settled file)."""
    path = tmp_path / "county.gpkg"
    store = open_county(path, catalog)
    store.initialize()
    store.bulk_load("townships", [
        Feature(1, MultiPolygon([box(100.6, 32.8, 100.7, 32.9)]), {"township_code": WEST, "name": "West"}),
        Feature(2, MultiPolygon([box(100.7, 32.8, 100.8, 32.9)]), {"township_code": EAST, "name": "East"})])
    store.bulk_load("grids", [
        Feature(1, MultiPolygon([box(100.6, 32.8, 100.7, 32.9)]), {"grid_code": "G1", "township_code": WEST}),
        Feature(2, MultiPolygon([box(100.7, 32.8, 100.8, 32.9)]), {"grid_code": "G2", "township_code": EAST})])
    store.bulk_load("events", [
        Feature(None, Point(100.61 + 0.04 * i, 32.85), {
            "title": f"Event {i}", "type": "garbage", "reported_at": datetime(2024, 3, 1 + i, 8, tzinfo=UTC)})
        for i in range(5)])
    store.insert("buildings", [Feature(None, box(100.62, 32.82, 100.621, 32.821), {"floors": 2, "is_key": True}),
                               Feature(None, box(100.72, 32.82, 100.721, 32.821), {"floors": 3})], Scope.everything())
    store.insert("patrols", [Feature(None, LineString([(100.62, 32.81), (100.75, 32.85)]), {
        "worker": "w1", "started_at": "2024-03-01T08:00:00Z"})], Scope.everything())
    store.insert("temples", [Feature(None, Point(100.65, 32.85), {"name": "Temple"})], Scope.everything())
    store.put_users([UserRecord("admin", "admin", "hash")])
    store.close()
    assert not Path(str(path) + "-wal").exists()
    return path


def layer_summaries(path: Path) -> dict[str, tuple[str, int]]:
    """{layer: (geometry, feature count)} as `ogrinfo -so -al` reports them."""
    out = run("ogrinfo", "-ro", "-so", "-al", str(path)).stdout
    blocks = re.findall(r"Layer name: (\S+)\n(?:.*\n)*?Geometry: (.+)\nFeature Count: (\d+)", out)
    return {name: (geometry, int(n)) for name, geometry, n in blocks}


def test_ogrinfo_lists_every_layer_with_its_geometry_type_and_count(county, catalog):
    listing = run("ogrinfo", "-ro", "-so", str(county)).stdout
    summaries = layer_summaries(county)
    for layer in catalog:
        assert f": {layer.id} ({GDAL_GEOMETRY[layer.geometry_type]})" in listing
        assert summaries[layer.id] == (GDAL_GEOMETRY[layer.geometry_type], EXPECTED_COUNTS.get(layer.id, 0))
    assert summaries["users"] == ("None", 1) and summaries["api_keys"] == ("None", 0)


def test_ogr_sql_counts_and_spatial_filters_through_our_rtree(county):
    out = run("ogrinfo", "-ro", str(county), "-sql", "SELECT COUNT(*) FROM events").stdout
    assert "COUNT(*) (Integer) = 5" in out
    out = run("ogrinfo", "-ro", "-so", str(county), "events", "-spat", "100.60", "32.80", "100.70", "32.90").stdout
    assert "Feature Count: 3" in out  # lon 100.61, 100.65, 100.69
    out = run("ogrinfo", "-ro", str(county), "events", "-fid", "1").stdout
    assert "reported_at (DateTime) = 2024/03/01 08:00:00+00" in out and "township_code (String) = 632626100" in out


def test_gdal_validator_finds_a_conformant_geopackage(county):
    done = run("/usr/bin/python3", "-m", "osgeo_utils.samples.validate_gpkg", str(county))
    assert done.stdout.strip() == ""


def test_gdal_writes_and_the_store_reads_what_it_wrote(county, catalog, tmp_path):
    new = tmp_path / "new.geojson"
    new.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [100.78, 32.88]},
        "properties": {"title": "Reported in QGIS", "type": "wildlife", "reported_at": "2024-04-01T06:30:00.250Z",
                       "township_code": EAST}}]}))
    run("ogr2ogr", "-append", "-update", str(county), str(new), "-nln", "events")
    run("ogrinfo", str(county), "-sql", "UPDATE events SET status = 'closed' WHERE fid = 1")
    # Move building 1 onto building 2 (GDAL's own ST_ functions run our RTree triggers).
    run("ogrinfo", str(county), "-sql", "UPDATE buildings SET geom = (SELECT geom FROM buildings WHERE fid = 2) "
                                        "WHERE fid = 1")
    store = open_county(county, catalog)
    try:
        everything = Scope.everything()
        page = store.query("events", FeatureQuery(bbox=(100.77, 32.87, 100.79, 32.89)), everything)
        assert [f.properties["title"] for f in page.features] == ["Reported in QGIS"]
        assert page.features[0].properties["reported_at"] == datetime(2024, 4, 1, 6, 30, 0, 250000, tzinfo=UTC)
        assert store.get("events", 1, everything).properties["status"] == "closed"
        assert sorted(f.id for f in store.query("buildings", FeatureQuery(bbox=(100.715, 32.815, 100.725, 32.825)),
                                                everything).features) == [1, 2]
        later = datetime(2024, 3, 31, tzinfo=UTC)
        assert [f.id for f in store.query("events", FeatureQuery(datetime=(later, None)), everything).features] == [6]
        # ...and the store keeps writing to the file GDAL touched.
        moved = store.update("events", 6, Feature(None, Point(100.62, 32.83), {}), everything, partial=True)
        assert moved.properties["township_code"] == WEST
        assert store.query("events", FeatureQuery(bbox=(100.77, 32.87, 100.79, 32.89)), everything).features == []
    finally:
        store.close()
    run("/usr/bin/python3", "-m", "osgeo_utils.samples.validate_gpkg", str(county))
