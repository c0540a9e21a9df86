"""Buildings extruded from footprint by height into flat-shaded triangles in a local east-north-up frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

# The palette (linear RGB): ordinary, key (重点) and religious (寺院) buildings told apart at a glance.
PALETTE = (
    ("default", (0.85, 0.85, 0.85)),
    ("key", (0.95, 0.55, 0.10)),
    ("religious", (0.75, 0.15, 0.12)),
)
COLOURS = dict(PALETTE)
DEFAULT_HEIGHT = 3.0  # metres, for a footprint that records neither height nor floors
FLOOR_HEIGHT = 3.0


@dataclass
class Building:
    """One building of the white model: its footprint (lon/lat) and the properties carried as metadata."""

    id: int
    footprint: BaseGeometry
    height: float
    floors: int
    use: str
    township_code: str
    is_key: bool
    name: str = ""

    @property
    def colour(self) -> int:
        """The building's index in the palette: religious buildings red, key buildings orange, the rest grey."""
        if self.use == "religious":
            return 2
        return 1 if self.is_key else 0

    @classmethod
    def from_feature(cls, fid: int, geometry: BaseGeometry, props: dict[str, Any]) -> Building:
        """A building from a stored feature; height falls back to floors x 3 m, then to 3 m."""
        floors = int(props.get("floors") or 0)
        height = props.get("height")
        height = float(height) if height else (floors * FLOOR_HEIGHT if floors else DEFAULT_HEIGHT)
        return cls(fid, geometry, height, floors, props.get("use") or "", props.get("township_code") or "",
                   bool(props.get("is_key")), props.get("name") or "")


@dataclass
class Mesh:
    """Triangles with per-vertex normals, palette colours and feature ids (indices into the mesh's buildings)."""

    positions: np.ndarray  # (n, 3) float32, east-north-up metres
    normals: np.ndarray  # (n, 3) float32
    colour_index: np.ndarray  # (n,) uint8, into PALETTE
    feature_ids: np.ndarray  # (n,) float32
    buildings: list[Building] = field(default_factory=list)
    origin: tuple[float, float] = (0.0, 0.0)  # lon, lat of the frame's origin (on the ellipsoid)

    @property
    def triangle_count(self) -> int:
        """How many triangles the mesh holds."""
        return len(self.positions) // 3


@cache
def _to_ecef() -> Transformer:
    return Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


def enu_frame(lon: float, lat: float, height: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The ECEF origin and the 3x3 rotation whose rows are the east, north and up unit vectors there."""
    origin = np.array(_to_ecef().transform(lon, lat, height))
    lo, la = np.radians(lon), np.radians(lat)
    east = [-np.sin(lo), np.cos(lo), 0.0]
    north = [-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)]
    up = [np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]
    return origin, np.array([east, north, up])


def enu_to_ecef_matrix(lon: float, lat: float, height: float = 0.0) -> list[float]:
    """The column-major 4x4 transform from the local frame at lon/lat/height to ECEF (a tile's `transform`)."""
    origin, rot = enu_frame(lon, lat, height)
    m = np.eye(4)
    m[:3, :3] = rot.T
    m[:3, 3] = origin
    return [float(v) for v in m.T.ravel()]


def _rings(polygon: shapely.Polygon) -> list[np.ndarray]:
    polygon = shapely.orient_polygons(polygon)  # exterior counter-clockwise, holes clockwise
    return [np.asarray(polygon.exterior.coords)] + [np.asarray(r.coords) for r in polygon.interiors]


def _triangles_of(building: Building) -> np.ndarray:
    """(t, 3, 3) lon/lat/height corners, each triangle counter-clockwise seen from outside the solid."""
    polygons = list(getattr(building.footprint, "geoms", [building.footprint]))
    h = building.height
    out: list[np.ndarray] = []
    for polygon in polygons:
        if polygon.is_empty or polygon.area == 0:
            continue
        # The roof: a constrained Delaunay triangulation respects concave outlines and courtyards.
        roof = shapely.orient_polygons(shapely.get_parts(shapely.constrained_delaunay_triangles(polygon)))
        if len(roof):
            tri = shapely.get_coordinates(shapely.get_exterior_ring(roof)).reshape(len(roof), 4, 2)[:, :3]
            out.append(np.concatenate([tri, np.full((len(roof), 3, 1), h)], axis=2))
        for ring in _rings(polygon):
            a, b = ring[:-1], ring[1:]
            z0, zh = np.zeros((len(a), 1)), np.full((len(a), 1), h)
            a0, b0 = np.hstack([a, z0]), np.hstack([b, z0])
            a1, b1 = np.hstack([a, zh]), np.hstack([b, zh])
            out.append(np.stack([a0, b0, b1], axis=1))
            out.append(np.stack([a0, b1, a1], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 3, 3))


def extrude(buildings: list[Building], lon0: float, lat0: float) -> Mesh:
    """Every building as triangles in the east-north-up frame at (lon0, lat0, 0); degenerate ones dropped."""
    parts = [(_triangles_of(b), i) for i, b in enumerate(buildings)]
    tris = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, 3, 3))
    ids = np.concatenate([np.full(len(p), i) for p, i in parts]) if parts else np.zeros(0)
    flat = tris.reshape(-1, 3)
    ecef = np.column_stack(_to_ecef().transform(flat[:, 0], flat[:, 1], flat[:, 2]))
    origin, rot = enu_frame(lon0, lat0)
    enu = ((ecef - origin) @ rot.T).reshape(-1, 3, 3)
    normal = np.cross(enu[:, 1] - enu[:, 0], enu[:, 2] - enu[:, 0])
    length = np.linalg.norm(normal, axis=1)
    keep = length > 1e-6
    enu, normal, ids = enu[keep], normal[keep] / length[keep, None], ids[keep]
    colours = np.array([b.colour for b in buildings], dtype="uint8")
    return Mesh(
        positions=enu.reshape(-1, 3).astype("float32"),
        normals=np.repeat(normal, 3, axis=0).astype("float32"),
        colour_index=np.repeat(colours[ids.astype(int)], 3) if len(ids) else np.zeros(0, "uint8"),
        feature_ids=np.repeat(ids, 3).astype("float32"),
        buildings=buildings,
        origin=(lon0, lat0),
    )
