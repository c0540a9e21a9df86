"""The hand-written MVT of heat-map hexagons decodes with mapbox-vector-tile as the polygons and properties given:
exterior rings oriented as MVT wants whatever the input's winding, negative and out-of-tile vertices kept,
rings that collapse on the integer grid left out."""

from __future__ import annotations

import mapbox_vector_tile
import numpy as np
from shapely.geometry import Polygon, shape

from tiles.hexagon_mvt import encode_polygons


def _hexagon(cx: float, cy: float, r: float, clockwise: bool = False) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 7)[:-1] * (-1 if clockwise else 1)
    return np.column_stack((cx + r * np.cos(angles), cy + r * np.sin(angles)))


def test_hexagons_decode_with_their_properties_and_shapes():
    rings = [_hexagon(100, 100, 50), _hexagon(-20, 4100, 60, clockwise=True), _hexagon(2000, 2000, 0.2)]
    props = [{"h3": "a", "count": 3, "layer": "events"}, {"h3": "b", "count": 70000, "layer": "alarms"},
             {"h3": "c", "count": 1, "layer": "events"}]
    tile = mapbox_vector_tile.decode(encode_polygons("heatmap", 4096, rings, props),
                                     default_options={"y_coord_down": True})
    layer = tile["heatmap"]
    assert layer["extent"] == 4096
    assert [f["properties"] for f in layer["features"]] == props[:2]  # the third collapses to a point
    for f, ring in zip(layer["features"], rings, strict=False):
        got = shape(f["geometry"])
        assert f["geometry"]["type"] == "Polygon" and got.is_valid
        assert got.symmetric_difference(Polygon(np.rint(ring))).area < 1e-6


def test_exterior_rings_have_a_positive_area_in_tile_coordinates():
    for clockwise in (False, True):
        tile = mapbox_vector_tile.decode(encode_polygons("heatmap", 4096, [_hexagon(500, 500, 100, clockwise)],
                                                         [{"count": 1}]),
                                         default_options={"y_coord_down": True, "geojson": False})
        [ring] = tile["heatmap"]["features"][0]["geometry"]["coordinates"]
        x, y = np.array(ring[:-1], dtype=float).T
        assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


def test_no_polygon_left_is_an_empty_tile():
    assert encode_polygons("heatmap", 4096, [], []) == b""
    assert encode_polygons("heatmap", 4096, [_hexagon(1, 1, 0.1)], [{"count": 1}]) == b""
