"""`onemap load` / `onemap export`: files in, files out, and bad files refused whole with a clear reason."""

import json

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from geoserver.access import Scope
from geoserver.errors import LoadError
from geoserver.features import Feature, FeatureQuery
from geoserver.fileio import export_layer, load_file

TOWN = "632626100"
GRID = "632626100001001"
AREA = box(100.70, 32.90, 100.80, 33.00)


@pytest.fixture
def store(empty_store):
    """A store with one township and one grid, so loads get their codes by spatial join."""
    empty_store.bulk_load("townships", [Feature(1, AREA, {"township_code": TOWN, "name": "Sailaitang"})])
    empty_store.bulk_load("grids", [Feature(1, AREA, {"grid_code": GRID, "township_code": TOWN})])
    return empty_store


def count(store, layer):
    return store.extent(layer, Scope.everything()).count


def write_geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def pt(x, y, **props):
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": props}


def test_geojson_points_load_with_township_and_grid_from_the_map(store, catalog, tmp_path):
    f = write_geojson(tmp_path / "pois.geojson", [
        pt(100.75, 32.95, name="Service hall", category="service_hall", colour="blue"),
        pt(100.71, 32.91, name="Co-op", category="enterprise"),
    ])
    n, ignored = load_file(store, catalog.get("pois"), f)
    assert n == 2 and ignored == ["colour"]
    page = store.query("pois", FeatureQuery(limit=10), Scope.everything())
    assert {f.properties["township_code"] for f in page.features} == {TOWN}
    assert {f.properties["grid_code"] for f in page.features} == {GRID}


def test_an_invalid_geometry_names_file_row_and_field_and_writes_nothing(store, catalog, tmp_path):
    bowtie = Polygon([(100.71, 32.91), (100.72, 32.92), (100.72, 32.91), (100.71, 32.92)])
    frame = gpd.GeoDataFrame({"floors": [2, 3]}, geometry=[box(100.71, 32.91, 100.711, 32.911), bowtie],
                             crs="EPSG:4326")
    path = tmp_path / "houses.gpkg"
    frame.to_file(path, engine="pyogrio")
    with pytest.raises(LoadError) as err:
        load_file(store, catalog.get("buildings"), path)
    assert err.value.row == 2 and err.value.field == "geometry"
    assert "houses.gpkg" in str(err.value) and "Self-intersection" in str(err.value)
    assert count(store, "buildings") == 0


def test_a_wrong_type_names_the_row_and_field(store, catalog, tmp_path):
    csv = tmp_path / "houses.csv"
    csv.write_text("lon,lat,name,category\n100.75,32.95,A,enterprise\n100.76,32.96,B,castle\n")
    with pytest.raises(LoadError) as err:
        load_file(store, catalog.get("pois"), csv)
    assert (err.value.row, err.value.field) == (2, "category")
    assert "castle" in str(err.value)
    assert count(store, "pois") == 0


def test_a_missing_required_field_is_refused(store, catalog, tmp_path):
    f = write_geojson(tmp_path / "e.geojson", [pt(100.75, 32.95, title="Pothole")])
    with pytest.raises(LoadError) as err:
        load_file(store, catalog.get("events"), f)
    assert err.value.field in ("type", "reported_at") and err.value.row == 1


def test_csv_needs_coordinates(store, catalog, tmp_path):
    csv = tmp_path / "no_coords.csv"
    csv.write_text("name,category\nA,enterprise\n")
    with pytest.raises(LoadError, match="longitude/latitude"):
        load_file(store, catalog.get("pois"), csv)


def test_a_file_without_crs_needs_one_and_an_unknown_crs_is_named(store, catalog, tmp_path):
    frame = gpd.GeoDataFrame({"name": ["A"], "category": ["enterprise"]}, geometry=[Point(100.75, 32.95)])
    path = tmp_path / "nocrs.shp"
    frame.to_file(path, engine="pyogrio")
    with pytest.raises(LoadError, match="declares no CRS"):
        load_file(store, catalog.get("pois"), path)
    with pytest.raises(LoadError) as err:
        load_file(store, catalog.get("pois"), path, crs="EPSG:999999")
    assert err.value.field == "crs"
    n, _ = load_file(store, catalog.get("pois"), path, crs="EPSG:4490")
    assert n == 1


def test_projected_files_are_reprojected_to_lon_lat(store, catalog, tmp_path):
    frame = gpd.GeoDataFrame({"name": ["A"], "category": ["scenic_spot"]}, geometry=[Point(100.75, 32.95)],
                             crs="EPSG:4326").to_crs("EPSG:3857")
    path = tmp_path / "merc.gpkg"
    frame.to_file(path, engine="pyogrio")
    load_file(store, catalog.get("pois"), path)
    [f] = list(store.iter_features("pois", Scope.everything()))
    assert f.geometry.x == pytest.approx(100.75, abs=1e-7) and f.geometry.y == pytest.approx(32.95, abs=1e-7)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "csv"])
def test_export_round_trips_what_the_scope_sees(store, catalog, tmp_path, fmt):
    f = write_geojson(tmp_path / "p.geojson", [pt(100.75, 32.95, name="A", category="enterprise"),
                                               pt(100.76, 32.96, name="B", category="party_org")])
    load_file(store, catalog.get("pois"), f)
    out = tmp_path / f"pois.{fmt}"
    assert export_layer(store, catalog.get("pois"), out, fmt, Scope.everything()) == 2
    if fmt == "csv":
        text = out.read_text()
        assert "POINT (100.75 32.95)" in text and "party_org" in text
    else:
        back = pyogrio.read_dataframe(out)
        assert sorted(back["name"]) == ["A", "B"]
        assert shapely.equals_exact(back.geometry.values[0], Point(100.75, 32.95), 1e-7) or \
            shapely.equals_exact(back.geometry.values[1], Point(100.75, 32.95), 1e-7)
    other = tmp_path / f"none.{fmt}"
    assert export_layer(store, catalog.get("pois"), other, fmt, Scope.of({"999"})) == 0
