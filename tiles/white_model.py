"""The 3D white model as an OGC 3D Tiles 1.1 tileset: a quadtree of glb contents, built per access scope."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import shapely

from geoserver.access import Principal, Scope, scope_for
from geoserver.catalog import Catalog
from geoserver.errors import NotFound
from geoserver.events import Change
from geoserver.store import Store
from tiles.extrude import Building, enu_to_ecef_matrix, extrude
from tiles.gltf import to_glb

LAYER_ID = "buildings"
MAX_PER_TILE = 400  # buildings per content tile: a few hundred kB of glb
MAX_DEPTH = 12
# Geometric error of a node, as a fraction of its diagonal: a quadrant 2 km across (error 100 m) opens
# when the camera comes within roughly 4 km of it at Cesium's default maximum screen-space error.
ERROR_PER_METRE = 1 / 20
METRES_PER_DEGREE = 111_320.0


@dataclass
class WhiteModel:
    """A built tileset: its JSON, the glb of every content tile by path, and what it took to make."""

    tileset: dict
    contents: dict[str, bytes] = field(default_factory=dict)
    building_count: int = 0
    build_seconds: float = 0.0
    etag: str = ""

    @property
    def size_bytes(self) -> int:
        """Bytes of tileset.json plus every glb."""
        return len(json.dumps(self.tileset)) + sum(len(c) for c in self.contents.values())


def _diagonal_metres(bbox: tuple[float, float, float, float]) -> float:
    west, south, east, north = bbox
    dx = (east - west) * METRES_PER_DEGREE * math.cos(math.radians((south + north) / 2))
    return math.hypot(dx, (north - south) * METRES_PER_DEGREE)


def _region(bbox: tuple[float, float, float, float], top: float) -> list[float]:
    west, south, east, north = bbox
    return [math.radians(west), math.radians(south), math.radians(east), math.radians(north), 0.0, float(top)]


def _union(regions: list[list[float]]) -> list[float]:
    return [min(r[0] for r in regions), min(r[1] for r in regions), max(r[2] for r in regions),
            max(r[3] for r in regions), min(r[4] for r in regions), max(r[5] for r in regions)]


class _Builder:
    """Splits buildings into quadrants (by footprint centre) until a quadrant holds few enough."""

    def __init__(self, buildings: list[Building], max_per_tile: int) -> None:
        self.buildings = buildings
        self.max_per_tile = max_per_tile
        self.contents: dict[str, bytes] = {}
        centres = shapely.centroid([b.footprint for b in buildings])
        self.cx, self.cy = shapely.get_x(centres), shapely.get_y(centres)

    def node(self, items: list[int], cell: tuple[float, float, float, float], path: str, depth: int) -> dict:
        if len(items) <= self.max_per_tile or depth >= MAX_DEPTH:
            return self.leaf(items, path)
        west, south, east, north = cell
        mx, my = (west + east) / 2, (south + north) / 2
        quads = [(west, south, mx, my), (mx, south, east, my), (west, my, mx, north), (mx, my, east, north)]
        children = []
        for i, (qw, qs, qe, qn) in enumerate(quads):
            inside = [k for k in items if qw <= self.cx[k] < qe or (i % 2 == 1 and self.cx[k] == qe)]
            inside = [k for k in inside if qs <= self.cy[k] < qn or (i >= 2 and self.cy[k] == qn)]
            if inside:
                children.append(self.node(inside, (qw, qs, qe, qn), f"{path}-{i}", depth + 1))
        return {"boundingVolume": {"region": _union([c["boundingVolume"]["region"] for c in children])},
                "geometricError": _diagonal_metres(cell) * ERROR_PER_METRE, "children": children}

    def leaf(self, items: list[int], path: str) -> dict:
        chosen = [self.buildings[k] for k in items]
        bbox = tuple(shapely.total_bounds([b.footprint for b in chosen]))
        lon0, lat0 = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
        self.contents[path] = to_glb(extrude(chosen, lon0, lat0))
        return {"boundingVolume": {"region": _region(bbox, max(b.height for b in chosen))},
                "geometricError": 0.0, "transform": enu_to_ecef_matrix(lon0, lat0),
                "content": {"uri": f"{path}.glb"}}


def build_white_model(buildings: list[Building], max_per_tile: int = MAX_PER_TILE) -> WhiteModel:
    """The tileset of these buildings: internal nodes refine by adding children; content only in leaves."""
    started = time.perf_counter()
    if buildings:
        builder = _Builder(buildings, max_per_tile)
        bbox = tuple(shapely.total_bounds([b.footprint for b in buildings]))
        root = builder.node(list(range(len(buildings))), bbox, "0", 0)
        contents = builder.contents
        error = max(root["geometricError"], _diagonal_metres(bbox) * ERROR_PER_METRE)
    else:  # nobody's buildings in scope: a valid, empty tileset
        root, contents, error = {"boundingVolume": {"region": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]},
                                 "geometricError": 0.0}, {}, 0.0
    root["refine"] = "ADD"
    tileset = {"asset": {"version": "1.1", "generator": "onemap"}, "geometricError": error, "root": root}
    digest = hashlib.sha1(json.dumps(tileset, sort_keys=True).encode())
    for path in sorted(contents):
        digest.update(contents[path])
    return WhiteModel(tileset, contents, len(buildings), time.perf_counter() - started,
                      '"' + digest.hexdigest() + '"')


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
        """Any committed write to buildings invalidates every built model."""
        if change.layer_id == LAYER_ID:
            with self._lock:
                self._models.clear()

    def scope(self, principal: Principal) -> Scope:
        """The caller's read scope on buildings; NotFound when the layer does not exist for them."""
        scope = scope_for(principal, self.layer, "read")
        if scope.townships == frozenset():
            raise NotFound(f"no collection {LAYER_ID!r}", parameter="collectionId")
        return scope

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
        try:
            return model.contents[path], model.etag
        except KeyError:
            raise NotFound(f"no 3D tile {path!r} in the buildings tileset", parameter="tile_path") from None
