"""Property declarations shared by many layers (the permission keys)."""

from geoserver.catalog import Property

TOWNSHIP = Property("township_code", "string", "Township code", tile_min_zoom=0)
GRID = Property("grid_code", "string", "Grid code", tile_min_zoom=12)
NAME = Property("name", "string", "Name")
