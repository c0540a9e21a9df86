"""Decoding helpers for tile tests: MVT bytes to layers of features in tile units or lon/lat."""

from __future__ import annotations

import mapbox_vector_tile
from pyproj import Transformer
from shapely.geometry import shape

from tiles.tms import get_tiling


def decode(content: bytes) -> dict:
    """{layer name: [feature dicts]} with geometries in tile units (y down)."""
    if not content:
        return {}
    layers = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return {name: layer["features"] for name, layer in layers.items()}


def lonlat(tms_id: str, z: int, x: int, y: int, px: float, py: float, extent: int = 4096) -> tuple[float, float]:
    """A tile-unit position back in lon/lat."""
    tiling = get_tiling(tms_id)
    minx, miny, maxx, maxy = tiling.bounds(z, x, y)
    cx = minx + px / extent * (maxx - minx)
    cy = maxy - py / extent * (maxy - miny)
    lon, lat = Transformer.from_crs(tiling.epsg, 4326, always_xy=True).transform(cx, cy)
    return lon, lat


def geometry(feature: dict):
    """The shapely geometry of a decoded feature (tile units)."""
    return shape(feature["geometry"])
