"""Generalisation per zoom, derived from the catalog: which layers, which properties, how simplified, clustered."""

from __future__ import annotations

from dataclasses import dataclass

from geoserver.catalog import Catalog, Layer
from geoserver.vectortile import DEFAULT_BUFFER, DEFAULT_EXTENT, TileFilter, TileRequest
from tiles.tms import Tiling

# Point layers are clustered on a grid (one feature per 64x64-unit cell, with point_count) below this
# zoom, and in any case for their first CLUSTER_ZOOMS zooms: dense layers that start late (GPS fixes,
# readings) would otherwise put tens of thousands of points in one tile.
CLUSTER_BELOW = 12
# Live point layers (events, alarms) grow without bound -- a million events put 2 MB of points in one z12
# tile of the large sample -- so they stay clustered three zooms longer.
LIVE_CLUSTER_BELOW = 15
CLUSTER_ZOOMS = 2
CLUSTER_CELL = 64
# Douglas-Peucker tolerance in tile units (1/4096 of a tile; 8 units are one pixel of a 512-pixel tile):
# one pixel up to FINE_FROM, a quarter pixel above, where footprints must keep their corners.
COARSE_TOLERANCE = 8.0
FINE_TOLERANCE = 2.0
FINE_FROM = 15
LINE_FACTOR = 2.0


@dataclass(frozen=True)
class LayerPlan:
    """How one layer is drawn in tiles at one zoom."""

    layer: Layer
    z: int
    properties: tuple[str, ...]
    tolerance: float
    cluster_cell: int | None

    @property
    def clustered(self) -> bool:
        """True when points are aggregated with a point_count."""
        return self.cluster_cell is not None


class TilePlan:
    """The tile layers of a catalog and their generalisation at each zoom."""

    def __init__(self, catalog: Catalog, *, extent: int = DEFAULT_EXTENT, buffer: int = DEFAULT_BUFFER) -> None:
        self.catalog = catalog
        self.extent = extent
        self.buffer = buffer

    def layers_at(self, z: int, layer_ids: tuple[str, ...] | None = None) -> list[Layer]:
        """The layers drawn at zoom `z` (all of the catalog, or those named), in catalog order."""
        wanted = None if layer_ids is None else set(layer_ids)
        return [lyr for lyr in self.catalog if lyr.min_zoom <= z <= lyr.max_zoom
                and (wanted is None or lyr.id in wanted)]

    def plan(self, layer: Layer, z: int) -> LayerPlan:
        """What goes into the tiles of `layer` at zoom `z`."""
        point = layer.geometry_type.endswith("Point")
        below = LIVE_CLUSTER_BELOW if layer.live else CLUSTER_BELOW
        clustered = z < max(below, layer.min_zoom + CLUSTER_ZOOMS)
        cluster = CLUSTER_CELL if point and clustered else None
        props = () if cluster else tuple(
            p.name for p in layer.properties
            if p.in_tiles and (p.tile_min_zoom is None or p.tile_min_zoom <= z))
        tolerance = 0.0 if point else (FINE_TOLERANCE if z >= FINE_FROM else COARSE_TOLERANCE)
        if layer.geometry_type.endswith("LineString") and z < FINE_FROM:
            tolerance *= LINE_FACTOR  # tracks overlap along the same streets: two pixels are plenty
        return LayerPlan(layer, z, props, tolerance, cluster)

    def request(self, layer: Layer, tiling: Tiling, z: int, x: int, y: int, *, where: TileFilter | None = None,
                ) -> TileRequest:
        """The TileRequest a store answers for one layer of one tile (only features matching `where`)."""
        lp = self.plan(layer, z)
        w, s, e, n = tiling.lonlat_bounds(z, x, y)
        # The index box grows by the buffer (plus a hair for the lon/lat vs projected difference).
        grow = 1.5 * self.buffer / self.extent
        dx, dy = (e - w) * grow, (n - s) * grow
        lonlat = (max(w - dx, -180.0), max(s - dy, -90.0), min(e + dx, 180.0), min(n + dy, 90.0))
        return TileRequest(layer.id, z, x, y, tiling.epsg, tiling.bounds(z, x, y), lonlat, lp.properties,
                           self.extent, self.buffer, lp.tolerance, lp.cluster_cell,
                           layer.cluster_counts if lp.cluster_cell else (),
                           where.filter if where else None, where.datetime if where else None)

    def invalidation_margin(self) -> float:
        """How far (in tiles) a feature can reach into a neighbouring tile: the buffer, with the same hair."""
        return 1.5 * self.buffer / self.extent
