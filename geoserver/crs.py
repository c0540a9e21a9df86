"""Coordinate reference systems offered to clients (OGC API Features Part 2) and transforms to/from storage.

Storage is lon/lat (CRS84 axis order). EPSG:4326 and EPSG:4490 (CGCS2000) are lat/lon as their
authorities define them; EPSG:3857 is x/y in metres.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from geoserver.errors import BadInput

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
SUPPORTED = (CRS84, EPSG_4326, EPSG_3857, EPSG_4490)
# What shapely's shape() raises for a malformed GeoJSON geometry (an unknown type is a GeometryTypeError).
GEOMETRY_ERRORS = (AttributeError, IndexError, KeyError, TypeError, ValueError, shapely.errors.ShapelyError)
_CODES = {CRS84: "OGC:CRS84", EPSG_4326: "EPSG:4326", EPSG_3857: "EPSG:3857", EPSG_4490: "EPSG:4490"}
_ALIASES = {"CRS84": CRS84, "OGC:CRS84": CRS84, "EPSG:4326": EPSG_4326, "EPSG:3857": EPSG_3857,
            "EPSG:4490": EPSG_4490, "[EPSG:4326]": EPSG_4326, "[EPSG:3857]": EPSG_3857,
            "[EPSG:4490]": EPSG_4490, "[OGC:CRS84]": CRS84}


def parse_crs(value: str | None, parameter: str = "crs") -> str:
    """The canonical URI of a supported CRS (CRS84 when absent); BadInput naming `parameter` otherwise."""
    if value is None or value == "":
        return CRS84
    v = value.strip()
    v = v.replace("https://", "http://").replace("/def/crs/OGC/0/CRS84", "/def/crs/OGC/1.3/CRS84")
    uri = v if v in SUPPORTED else _ALIASES.get(v.upper())
    if uri is None:
        raise BadInput(f"{parameter} must be one of {', '.join(SUPPORTED)}; got {value!r}", parameter=parameter)
    return uri


@lru_cache(maxsize=16)
def _transformer(source: str, target: str) -> Transformer:
    # always_xy=False: coordinates follow each CRS's authority axis order (lat/lon for EPSG:4326/4490).
    return Transformer.from_crs(CRS(_CODES[source]), CRS(_CODES[target]), always_xy=False)


def _apply(geometry: BaseGeometry, transformer: Transformer) -> BaseGeometry:
    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, fn)


def from_storage(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    """A stored lon/lat geometry in the output CRS `crs` (a SUPPORTED URI)."""
    if crs == CRS84:
        return geometry
    return _apply(geometry, _transformer(CRS84, crs))


def to_storage(geometry: BaseGeometry, crs: str, parameter: str = "geometry") -> BaseGeometry:
    """A geometry given in `crs` as stored lon/lat; BadInput naming `parameter` if it lies outside the
    CRS's area of use (PROJ would otherwise clamp or wrap it to a wrong place without a word)."""
    if crs == CRS84:
        return geometry
    out = _apply(geometry, _transformer(crs, CRS84))
    _check_area(geometry, out, crs, parameter)
    return out


@lru_cache(maxsize=16)
def area_of_use(crs: str) -> tuple[float, float, float, float]:
    """The lon/lat box (west, south, east, north) where a supported CRS is defined."""
    area = CRS(_CODES[crs]).area_of_use
    return (-180.0, -90.0, 180.0, 90.0) if area is None else area.bounds


def _check_area(given: BaseGeometry, lonlat: BaseGeometry, crs: str, parameter: str) -> None:
    """BadInput unless every transformed vertex is finite, inside the area of use, and maps back to itself.

    The round trip catches what the box cannot: EPSG:3857 x beyond the world wraps to a longitude inside it.
    """
    west, south, east, north = area_of_use(crs)
    xy = shapely.get_coordinates(lonlat)
    lon, lat = xy[:, 0], xy[:, 1]
    inside = np.isfinite(xy).all() and bool(
        ((lon >= west - 1e-9) & (lon <= east + 1e-9) & (lat >= south - 1e-9) & (lat <= north + 1e-9)).all())
    if inside:
        back = np.column_stack(_transformer(CRS84, crs).transform(lon, lat))
        inside = bool(np.allclose(back, shapely.get_coordinates(given), rtol=1e-9, atol=1e-6))
    if not inside:
        raise BadInput(f"coordinates lie outside the area of use of {_CODES[crs]} (longitude {west}..{east}, "
                       f"latitude {south}..{north})", parameter=parameter)


def bbox_to_storage(bbox: tuple[float, ...], crs: str) -> tuple[float, float, float, float]:
    """A bbox given in `crs` axis order as a lon/lat (minx, miny, maxx, maxy) box."""
    minx, miny, maxx, maxy = bbox
    if crs == CRS84:
        return (minx, miny, maxx, maxy)
    out = _transformer(crs, CRS84).transform_bounds(minx, miny, maxx, maxy, densify_pts=21)
    return tuple(float(v) for v in out)  # type: ignore[return-value]


def bbox_from_storage(bbox: tuple[float, float, float, float], crs: str) -> list[float]:
    """A lon/lat bbox in the axis order of `crs`."""
    if crs == CRS84:
        return list(bbox)
    return [float(v) for v in _transformer(CRS84, crs).transform_bounds(*bbox, densify_pts=21)]


def filter_to_storage(node: Any, crs: str) -> Any:
    """A CQL2-JSON expression with every geometry literal moved from `crs` to lon/lat."""
    if crs == CRS84:
        return node
    if isinstance(node, list):
        return [filter_to_storage(n, crs) for n in node]
    if not isinstance(node, dict):
        return node
    if "bbox" in node and len(node) == 1:
        return {"bbox": list(bbox_to_storage(tuple(node["bbox"][:4]), crs))}
    if "type" in node and "coordinates" in node:
        try:
            geom = shapely.geometry.shape(node)
        except GEOMETRY_ERRORS as exc:
            raise BadInput(f"invalid geometry literal in filter: {exc}", parameter="filter") from None
        return shapely.geometry.mapping(to_storage(geom, crs, "filter"))
    return {k: filter_to_storage(v, crs) for k, v in node.items()}
