"""The 3D white model as an OGC 3D Tiles 1.1 tileset: a quadtree of glb contents, built per access scope.

Leaves hold the buildings themselves (with their properties); every node above them holds merged blocks of
its buildings at a cell size that halves at each level, and is replaced by its children as the camera comes
closer (REPLACE refinement). So the county view draws its settlements at once from a handful of small tiles,
and a street view the buildings, never both.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict

import numpy as np
import shapely

from geoserver.access import Principal, Scope, read_scope
from geoserver.catalog import Catalog
from geoserver.changes import RESET, Change
from geoserver.errors import NotFound
from geoserver.store import Store
from tiles.blocks import merged_blocks
from tiles.extrude import Building, extrude
from tiles.gltf import to_glb

LAYER_ID = "buildings"
MAX_PER_TILE = 400  # buildings per content tile: a few hundred kB of glb
MAX_DEPTH = 12
# Geometric error of a node, as a fraction of its diagonal: a quadrant 2 km across (error 100 m) opens
# when the camera comes within roughly 4 km of it at Cesium's default maximum screen-space error.
ERROR_PER_METRE = 1 / 20
BLOCK_CELLS = 40  # an overview node's blocks: cells of 1/40 of its diagonal (half its geometric error)
MIN_BLOCK_CELL = 150.0  # metres: below that, blocks would cost nearly what the buildings do; nodes stay empty
METRES_PER_DEGREE = 111_320.0


class WhiteModel:
    """A built tileset: its JSON, which buildings each content tile holds, and what it took to make.

    The glb of a content tile is made on first request and kept in a small LRU: a large county's model
    never has to sit in memory whole.
    """

    def __init__(self, tileset: dict, buildings: list[Building], leaves: dict[str, np.ndarray],
                 build_seconds: float, etag: str, max_cached: int = 256,
                 overviews: dict[str, tuple[np.ndarray, float, tuple]] | None = None) -> None:
        self.tileset = tileset
        self.buildings = buildings
        self.leaves = leaves
        self.overviews = overviews or {}
        self.build_seconds = build_seconds
        self.etag = etag
        self._glbs: OrderedDict[str, bytes] = OrderedDict()
        self._max_cached = max_cached
        self._lock = threading.Lock()

    @property
    def building_count(self) -> int:
        """How many buildings the model holds."""
        return len(self.buildings)

    def content(self, path: str) -> bytes:
        """The glb of content tile `path`; NotFound if the tileset has no such tile."""
        with self._lock:
            if path in self._glbs:
                self._glbs.move_to_end(path)
                return self._glbs[path]
        if path in self.leaves:
            glb = self._content([self.buildings[k] for k in self.leaves[path]], features=True)
        elif path in self.overviews:
            idx, cell, bbox = self.overviews[path]
            glb = self._content(merged_blocks([self.buildings[k] for k in idx], cell, bbox), features=False)
        else:
            raise NotFound(f"no 3D tile {path!r} in the buildings tileset", parameter="tile_path")
        with self._lock:
            self._glbs[path] = glb
            while len(self._glbs) > self._max_cached:
                self._glbs.popitem(last=False)
        return glb

    @staticmethod
    def _content(chosen: list[Building], features: bool) -> bytes:
        # The content's local frame sits at the centre of its buildings' bounds.
        west, south, east, north = shapely.total_bounds([b.footprint for b in chosen])
        return to_glb(extrude(chosen, (west + east) / 2, (south + north) / 2), features=features)


def _diagonal_metres(bbox) -> float:
    west, south, east, north = bbox
    dx = (east - west) * METRES_PER_DEGREE * math.cos(math.radians((south + north) / 2))
    return math.hypot(dx, (north - south) * METRES_PER_DEGREE)


def _region(bbox, top: float) -> list[float]:
    west, south, east, north = (float(v) for v in bbox)
    return [math.radians(west), math.radians(south), math.radians(east), math.radians(north), 0.0, float(top)]


def _union(regions: list[list[float]]) -> list[float]:
    return [min(r[0] for r in regions), min(r[1] for r in regions), max(r[2] for r in regions),
            max(r[3] for r in regions), min(r[4] for r in regions), max(r[5] for r in regions)]


class _Builder:
    """Splits buildings into quadrants (by footprint centre) until a quadrant holds few enough."""

    def __init__(self, buildings: list[Building], max_per_tile: int, min_block_cell: float) -> None:
        footprints = [b.footprint for b in buildings]
        self.bounds = shapely.bounds(footprints)
        centres = shapely.centroid(footprints)
        self.cx, self.cy = shapely.get_x(centres), shapely.get_y(centres)
        self.heights = np.array([b.height for b in buildings], dtype="float64")
        self.max_per_tile = max_per_tile
        self.min_block_cell = min_block_cell
        self.leaves: dict[str, np.ndarray] = {}
        self.overviews: dict[str, tuple[np.ndarray, float, tuple]] = {}

    def node(self, idx: np.ndarray, cell: tuple[float, float, float, float], path: str, depth: int) -> dict:
        if len(idx) <= self.max_per_tile or depth >= MAX_DEPTH:
            return self.leaf(idx, path)
        west, south, east, north = cell
        mx, my = (west + east) / 2, (south + north) / 2
        quadrant = (self.cx[idx] >= mx).astype(int) + 2 * (self.cy[idx] >= my).astype(int)
        quads = [(west, south, mx, my), (mx, south, east, my), (west, my, mx, north), (mx, my, east, north)]
        children = [self.node(idx[quadrant == i], quads[i], f"{path}-{i}", depth + 1)
                    for i in range(4) if (quadrant == i).any()]
        b = self.bounds[idx]
        bbox = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        diagonal = _diagonal_metres(cell)
        node = {"boundingVolume": {"region": _union([c["boundingVolume"]["region"] for c in children])},
                "geometricError": diagonal * ERROR_PER_METRE, "children": children}
        if diagonal / BLOCK_CELLS >= self.min_block_cell:
            self.overviews[path] = (idx, diagonal / BLOCK_CELLS, bbox)
            node["content"] = {"uri": f"{path}.glb"}
        return node

    def leaf(self, idx: np.ndarray, path: str) -> dict:
        b = self.bounds[idx]
        bbox = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        self.leaves[path] = idx
        return {"boundingVolume": {"region": _region(bbox, self.heights[idx].max())},
                "geometricError": 0.0, "content": {"uri": f"{path}.glb"}}


def build_white_model(buildings: list[Building], max_per_tile: int = MAX_PER_TILE,
                      min_block_cell: float = MIN_BLOCK_CELL) -> WhiteModel:
    """The tileset of these buildings: buildings in the leaves, merged blocks above them, REPLACE refinement."""
    started = time.perf_counter()
    leaves: dict[str, np.ndarray] = {}
    overviews: dict[str, tuple[np.ndarray, float, tuple]] = {}
    if buildings:
        builder = _Builder(buildings, max_per_tile, min_block_cell)
        b = builder.bounds
        bbox = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        root = builder.node(np.arange(len(buildings)), bbox, "0", 0)
        leaves, overviews = builder.leaves, builder.overviews
        error = max(root["geometricError"], _diagonal_metres(bbox) * ERROR_PER_METRE)
    else:  # nobody's buildings in scope: a valid, empty tileset
        root, error = {"boundingVolume": {"region": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}, "geometricError": 0.0}, 0.0
    root["refine"] = "REPLACE"
    tileset = {"asset": {"version": "1.1", "generator": "onemap"}, "geometricError": error, "root": root}
    # The ETag covers every vertex and property, hashed as whole arrays (a million buildings in about a second).
    digest = hashlib.sha1(json.dumps(tileset, sort_keys=True).encode())
    digest.update(shapely.get_coordinates([x.footprint for x in buildings]).tobytes())
    digest.update(np.array([(x.id, x.height, x.floors, x.is_key) for x in buildings], dtype="float64").tobytes())
    digest.update("\x1f".join(f"{x.use}\x1e{x.township_code}\x1e{x.name}" for x in buildings).encode())
    return WhiteModel(tileset, buildings, leaves, time.perf_counter() - started, '"' + digest.hexdigest() + '"',
                      overviews=overviews)


class WhiteModelService:
    """Serves the white model per caller: built once per access scope, dropped when buildings change."""

    def __init__(self, store: Store, catalog: Catalog, max_scopes: int = 16) -> None:
        self.store = store
        self.layer = catalog.get(LAYER_ID)
        self.max_scopes = max_scopes
        self._models: OrderedDict[str, WhiteModel] = OrderedDict()
        self._lock = threading.Lock()
        self._unsubscribe = store.changes.subscribe(self.on_change)

    def close(self) -> None:
        """Stop listening to the store's changes."""
        self._unsubscribe()

    def on_change(self, change: Change) -> None:
        """Any committed write to buildings (or a reset of the feed) invalidates every built model."""
        if change.layer_id == LAYER_ID or change.op == RESET:
            with self._lock:
                self._models.clear()

    def scope(self, principal: Principal) -> Scope:
        """The caller's read scope on buildings; NotFound when the layer does not exist for them."""
        return read_scope(principal, self.layer)

    def model(self, principal: Principal) -> WhiteModel:
        """The caller's model, from the cache when this scope was built before."""
        scope = self.scope(principal)
        key = scope.cache_key()
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        buildings = [Building.from_feature(f.id, f.geometry, f.properties)
                     for f in self.store.iter_features(LAYER_ID, scope) if f.geometry is not None]
        model = build_white_model(buildings)
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.max_scopes:
                self._models.popitem(last=False)
        return model

    def content(self, principal: Principal, path: str) -> tuple[bytes, str]:
        """One content tile's glb and the model's ETag; NotFound for a path the caller's tileset lacks."""
        model = self.model(principal)
        return model.content(path), model.etag
