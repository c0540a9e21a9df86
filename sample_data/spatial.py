"""The county outline, a local metric frame, and vectorised sampling and locating of points."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry.base import BaseGeometry

OUTLINE_PATH = Path(__file__).with_name("banma_county.geojson")
GEOD = Geod(ellps="WGS84")
# A transverse Mercator centred on the county: metres, true to within 0.1 % across it.
LOCAL_CRS = "+proj=tmerc +lat_0=32.94 +lon_0=100.5 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
_FORWARD = Transformer.from_crs("EPSG:4326", LOCAL_CRS, always_xy=True)
_INVERSE = Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True)


@lru_cache(maxsize=1)
def county_outline() -> shapely.MultiPolygon:
    """The real Banma County boundary (lon/lat), as shipped in banma_county.geojson."""
    data = json.loads(OUTLINE_PATH.read_text(encoding="utf-8"))
    geom = shapely.geometry.shape(data["features"][0]["geometry"])
    shapely.prepare(geom)
    return geom


@lru_cache(maxsize=1)
def county_local() -> shapely.MultiPolygon:
    """The county outline in the local metric frame."""
    geom = geometry_to_local(county_outline())
    shapely.prepare(geom)
    return geom


def to_local(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat to local metres (x east, y north)."""
    return _FORWARD.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


def to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres to lon/lat."""
    return _INVERSE.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def geometry_to_local(geom: BaseGeometry) -> BaseGeometry:
    """A lon/lat geometry in the local frame."""
    return shapely.transform(geom, lambda c: np.column_stack(to_local(c[:, 0], c[:, 1])))


def geometry_to_lonlat(geom: BaseGeometry) -> BaseGeometry:
    """A local-frame geometry in lon/lat."""
    return shapely.transform(geom, lambda c: np.column_stack(to_lonlat(c[:, 0], c[:, 1])))


def polygonal(geom: BaseGeometry) -> shapely.MultiPolygon:
    """The polygonal part of a geometry (an intersection may add slivers of lines or points) as a MultiPolygon."""
    polygons: list[shapely.Polygon] = []
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon" and not part.is_empty:
            polygons.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            polygons.extend(polygonal(part).geoms)
    return shapely.MultiPolygon(polygons)


def random_points_in(geom: BaseGeometry, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` uniformly random points inside a (prepared or not) polygon, by vectorised rejection."""
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    have = 0
    while have < n:
        k = max(64, 2 * (n - have))
        x = rng.uniform(minx, maxx, k)
        y = rng.uniform(miny, maxy, k)
        inside = shapely.contains_xy(geom, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def geodesic_area_km2(geom: BaseGeometry) -> float:
    """The area of a lon/lat polygon on the WGS 84 ellipsoid, in km²."""
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


class AreaLocator:
    """Which of a set of areas (lon/lat polygons with codes) contains each of many points, vectorised."""

    def __init__(self, codes: list[str], geometries: list[BaseGeometry]) -> None:
        self.codes = np.array(codes, dtype=object)
        self.tree = shapely.STRtree(geometries)

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """The code of the area containing each point (None outside all); the first area wins on a border."""
        points = shapely.points(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        out = np.full(len(points), None, dtype=object)
        if len(points) == 0:
            return out
        pairs = self.tree.query(points, predicate="intersects")
        if pairs.shape[1]:
            order = np.lexsort((pairs[1], pairs[0]))
            point_idx, area_idx = pairs[0][order], pairs[1][order]
            first = np.unique(point_idx, return_index=True)[1]
            out[point_idx[first]] = self.codes[area_idx[first]]
        return out
