"""The white model without a server: extrusion, glb metadata, the tileset's 3D Tiles rules, Khronos' validator."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import shapely

from tests.tiles.tileset_rules import accessor, check_tileset, content_lonlat, read_glb
from tests.tiles.tileset_rules import property_table as read_table
from tests.tiles.white_model_county import buildings
from tiles.extrude import COLOURS, Building, extrude
from tiles.gltf import to_glb
from tiles.white_model import build_white_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    # The test county is a few hundred metres across: blocks at every level, however small their cells.
    return build_white_model(buildings(), max_per_tile=10, min_block_cell=1.0)


def glbs(model) -> dict[str, bytes]:
    """Every content tile's glb by its uri: the buildings' and the overview levels'."""
    return {f"{path}.glb": model.content(path) for path in [*model.leaves, *model.overviews]}


def _leaves(tile):
    if "content" in tile and not tile.get("children"):
        yield tile
    for child in tile.get("children", []):
        yield from _leaves(child)


def test_extrusion_stands_on_the_ground_with_roofs_up_and_walls_out():
    courtyard = buildings()[-1]
    mesh = extrude([courtyard], *courtyard.footprint.centroid.coords[0])
    up = mesh.normals[:, 2]
    assert mesh.positions[:, 2].min() == pytest.approx(0, abs=0.01)
    assert mesh.positions[:, 2].max() == pytest.approx(11.0, abs=0.01)
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1, atol=1e-5)
    assert not (up < -0.01).any()  # no roof faces down
    # The roof covers the footprint and not its courtyard: its area in m^2 matches the footprint's.
    roof = mesh.positions.reshape(-1, 3, 3)[up.reshape(-1, 3)[:, 0] > 0.99]
    area = 0.5 * np.linalg.norm(np.cross(roof[:, 1] - roof[:, 0], roof[:, 2] - roof[:, 0]), axis=1).sum()
    lat = np.radians(33.0188)
    expected = courtyard.footprint.area * (111_320 * np.cos(lat)) * 110_900
    assert area == pytest.approx(expected, rel=0.02)


def test_glb_carries_every_building_as_a_feature_with_its_properties():
    chosen = buildings()[-3:]
    doc, binary = read_glb(to_glb(extrude(chosen, 100.003, 33.019)))
    assert {"EXT_mesh_features", "EXT_structural_metadata"} <= set(doc["extensionsUsed"])
    prim = doc["meshes"][0]["primitives"][0]
    assert prim["extensions"]["EXT_mesh_features"]["featureIds"][0]["featureCount"] == 3
    table = read_table(doc, binary)
    assert table["id"] == [b.id for b in chosen]
    assert table["use"] == ["residential", "commercial", "religious"]
    assert table["is_key"] == [False, False, True]
    assert table["height"] == pytest.approx([chosen[0].height, 7.0, 11.0])
    assert table["name"][-1] == "Temple hall"
    ids = accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"])
    assert set(np.unique(ids)) == {0, 1, 2}
    # Each building's triangles are drawn in its palette colour (roofs at full brightness, walls darker).
    for feature, colour in ((0, "default"), (2, "religious")):
        roofs = [p for p in doc["meshes"][0]["primitives"]
                 if feature in set(ids[accessor(doc, binary, p["indices"])].tolist())
                 and doc["materials"][p["material"]]["name"].endswith("roof")]
        assert roofs, f"no roof primitive for feature {feature}"
        factor = doc["materials"][roofs[0]["material"]]["pbrMetallicRoughness"]["baseColorFactor"]
        assert factor[:3] == pytest.approx(COLOURS[colour])


def test_glb_is_indexed_and_quantized_so_a_box_costs_eight_corners():
    box = Building(7, shapely.box(100.0, 33.0, 100.0002, 33.0001), 9.0, 3, "residential", "t1", False)
    mesh = extrude([box], 100.0001, 33.00005)
    doc, binary = read_glb(to_glb(mesh))
    assert "KHR_mesh_quantization" in doc["extensionsRequired"]
    prim = doc["meshes"][0]["primitives"][0]
    assert doc["accessors"][prim["attributes"]["POSITION"]]["count"] == 8
    assert sum(doc["accessors"][p["indices"]]["count"] for p in doc["meshes"][0]["primitives"]) == 30
    # Dequantized through the node matrix, the corners are where the footprint and height put them.
    pts = content_lonlat({}, to_glb(mesh))
    assert pts[:, 0].min() == pytest.approx(100.0, abs=1e-7) and pts[:, 0].max() == pytest.approx(100.0002, abs=1e-7)
    assert pts[:, 1].min() == pytest.approx(33.0, abs=1e-7) and pts[:, 1].max() == pytest.approx(33.0001, abs=1e-7)
    assert pts[:, 2].min() == pytest.approx(0.0, abs=0.05) and pts[:, 2].max() == pytest.approx(9.0, abs=0.05)


def test_a_column_of_empty_names_is_left_out_not_stored_as_an_empty_buffer():
    chosen = [Building(i, shapely.box(100 + i * 1e-3, 33, 100.0002 + i * 1e-3, 33.0001), 6.0, 2, "residential",
                       "t1", False) for i in range(3)]
    doc, binary = read_glb(to_glb(extrude(chosen, 100.003, 33.019)))
    table = doc["extensions"]["EXT_structural_metadata"]["propertyTables"][0]
    assert "name" not in table["properties"] and "use" in table["properties"]
    assert all(v["byteLength"] > 0 for v in doc["bufferViews"])


def test_height_falls_back_to_floors_then_three_metres():
    square = shapely.box(100, 33, 100.0001, 33.0001)
    assert Building.from_feature(1, square, {"floors": 4}).height == 12.0
    assert Building.from_feature(2, square, {}).height == 3.0


def test_tileset_keeps_the_3d_tiles_rules(model):
    assert check_tileset(model.tileset, glbs(model)) == []


def test_tileset_is_a_quadtree_with_every_building_in_exactly_one_leaf(model):
    root = model.tileset["root"]
    assert root["refine"] == "REPLACE" and len(root["children"]) > 1
    ids = []
    for leaf in _leaves(root):
        ids += read_table(*read_glb(model.content(leaf["content"]["uri"][:-4])))["id"]
    assert sorted(ids) == [b.id for b in buildings()]


def test_the_rules_check_catches_a_child_outside_its_parent(model):
    broken = json.loads(json.dumps(model.tileset))
    broken["root"]["children"][0]["boundingVolume"]["region"][2] += 0.1
    problems = check_tileset(broken, glbs(model))
    assert any("not inside its parent" in p for p in problems)


def test_overview_levels_draw_merged_blocks_without_features(model):
    root = model.tileset["root"]
    assert root["content"]["uri"] == "0.glb"
    doc, binary = read_glb(model.content("0"))
    assert "EXT_structural_metadata" not in doc.get("extensionsUsed", [])
    assert all("_FEATURE_ID_0" not in p["attributes"] for p in doc["meshes"][0]["primitives"])
    # The root's blocks stand where the buildings are: every building centre lies under some block.
    pts = content_lonlat(root, model.content("0"))
    assert pts[:, 2].max() > 2.0
    west, south, east, north = shapely.total_bounds([b.footprint for b in buildings()])
    assert west - 1e-6 <= pts[:, 0].min() and pts[:, 0].max() <= east + 1e-6
    assert south - 1e-6 <= pts[:, 1].min() and pts[:, 1].max() <= north + 1e-6


def test_no_buildings_make_an_empty_valid_tileset():
    empty = build_white_model([])
    assert empty.leaves == {} and empty.tileset["asset"]["version"] == "1.1"


def test_every_glb_passes_khronos_gltf_validator(model, tmp_path):
    script = ROOT / "tests" / "tiles" / "validate_gltf.mjs"
    if not (ROOT / "node_modules" / "gltf-validator").is_dir():
        pytest.fail("npm gltf-validator is missing: run `make npm` (make test does)")
    files = []
    for uri, glb in glbs(model).items():
        files.append(tmp_path / uri)
        files[-1].write_bytes(glb)
    done = subprocess.run(["node", str(script), *map(str, files)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert len(reports) == len(files)
    for file, report in reports.items():
        assert (report["errors"], report["warnings"]) == (0, 0), (file, report["messages"])
