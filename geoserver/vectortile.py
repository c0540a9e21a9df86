"""What a store needs to build one Mapbox Vector Tile layer: TileRequest, and how values are written in MVT."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from geoserver.features import to_utc

DEFAULT_EXTENT = 4096
DEFAULT_BUFFER = 64
CLUSTER_COUNT = "point_count"


@dataclass(frozen=True)
class TileRequest:
    """One layer of one tile, as both tile engines build it.

    `bounds` are in the tile matrix set's CRS (`epsg`, x first); `lonlat_bbox` is the tile grown by the
    buffer in EPSG:4326, for the spatial index. `tolerance` (simplification) and `cluster_cell` are in tile
    units (0..extent). With `cluster_cell`, points become one feature per cell of that size holding
    `point_count` (only points inside the tile itself count, so a point is counted in exactly one tile).
    """

    layer_id: str
    z: int
    x: int
    y: int
    epsg: int
    bounds: tuple[float, float, float, float]
    lonlat_bbox: tuple[float, float, float, float]
    properties: tuple[str, ...] = ()
    extent: int = DEFAULT_EXTENT
    buffer: int = DEFAULT_BUFFER
    tolerance: float = 0.0
    cluster_cell: int | None = None
    # With clustering: (name, property, values) -- each cluster also counts its points whose property is one
    # of the values (Layer.cluster_counts).
    cluster_counts: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # Only the features matching these (a parsed CQL2-JSON filter, a datetime interval), as items would;
    # clusters then count only those. The caller's scope is applied besides, never widened.
    filter: dict[str, Any] | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None

    @property
    def web_mercator(self) -> bool:
        """True for the EPSG:3857 tile matrix set (PostGIS builds its envelope with ST_TileEnvelope)."""
        return self.epsg == 3857

    @property
    def units_per_pixel(self) -> float:
        """Size of one tile unit in CRS units (metres or degrees)."""
        return (self.bounds[2] - self.bounds[0]) / self.extent


@dataclass(frozen=True)
class TileFilter:
    """What a filtered tile keeps: a parsed CQL2-JSON filter and/or a datetime interval."""

    filter: dict[str, Any] | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None

    def cache_key(self) -> str:
        """A stable text for the tile cache (the same filter written twice gives the same key)."""
        times = [t.isoformat() if t is not None else ".." for t in self.datetime] if self.datetime else None
        return json.dumps([self.filter, times], sort_keys=True, separators=(",", ":"), default=str)


def mvt_value(value: Any) -> Any:
    """A property value as written in tiles by both engines (times as ISO-8601 UTC text)."""
    if isinstance(value, datetime):
        return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value
