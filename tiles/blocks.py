"""Merged blocks: the coarse stand-ins an overview level of the white model draws for many buildings at once.

Buildings are gathered into square cells (by footprint centre); each cell becomes one block, the convex hull of
its footprints at their median height. Far away a village reads as its block; closer, smaller cells follow
its streets; close up the buildings themselves replace them. All of it is vectorised (no per-cell geometry
loop), so a county's root level is made in a fraction of a second.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from tiles.extrude import Building

METRES_PER_DEGREE = 111_320.0


def merged_blocks(buildings: list[Building], cell_metres: float,
                  clip: tuple[float, float, float, float] | None = None) -> list[Building]:
    """The blocks standing for `buildings` at a cell size of `cell_metres` (each a Building with id 0)."""
    if not buildings:
        return []
    footprints = np.array([b.footprint for b in buildings], dtype=object)
    centres = shapely.centroid(footprints)
    x, y = shapely.get_x(centres), shapely.get_y(centres)
    lat = float(np.mean(y))
    cell_x = cell_metres / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    cell_y = cell_metres / METRES_PER_DEGREE
    keys = np.floor(x / cell_x).astype("int64") * 1_000_003 + np.floor(y / cell_y).astype("int64")
    cells, cell_of = np.unique(keys, return_inverse=True)
    parts, parts_owner = shapely.get_parts(footprints, return_index=True)  # multipolygons into polygons
    coords, owner = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    point_cell = cell_of[parts_owner[owner]]
    by_cell = np.argsort(point_cell, kind="stable")
    hulls = shapely.convex_hull(shapely.multipoints(coords[by_cell], indices=point_cell[by_cell]))
    if clip is not None:
        hulls = shapely.clip_by_rect(hulls, *clip)
    heights = np.array([b.height for b in buildings])
    order = np.argsort(cell_of, kind="stable")
    groups = np.split(heights[order], np.flatnonzero(np.diff(cell_of[order])) + 1)
    out = []
    for hull, group in zip(hulls, groups, strict=True):
        if isinstance(hull, shapely.Polygon) and hull.area > 0:
            out.append(Building(0, hull, float(np.median(group)), 0, "", "", False))
    return out
