"""The H3 cells a store keeps for each feature of a heat-mapped layer, and how each dialect reads one back.

A layer declared with `h3_cells` has a column `h3_cells` holding, for the feature's reference point, its H3
(v4) cell at every resolution 0-15: sixteen big-endian unsigned 64-bit cell ids, 128 bytes. Each is the
point's own cell at that resolution (h3.latlng_to_cell), not the parent of a finer cell: H3 children do not
tile their parent exactly, and about 7 % of points fall in a neighbour of their fine cell's parent, so
counts by parent would differ from counts by position. The cells are computed in Python when a feature is
written (neither store can run h3 in SQL here), and a row left without them (written by another program)
is filled on the next heat-map read. Grouping by `substr(h3_cells, 8r+1, 8)` then counts by cell in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import h3.api.basic_int as h3int
import numpy as np

COLUMN = "h3_cells"
RESOLUTIONS = range(16)
WIDTH = 8
SIZE = WIDTH * len(RESOLUTIONS)
NO_CELL = bytes(SIZE)  # a point h3 cannot place (it never is a cell: cell ids are never 0)


def cells_of(lon: float, lat: float) -> bytes:
    """The 128-byte cell record of one lon/lat point (zeros where h3 cannot place it)."""
    try:
        return b"".join(h3int.latlng_to_cell(lat, lon, r).to_bytes(WIDTH, "big") for r in RESOLUTIONS)
    except (ValueError, TypeError):  # h3's domain errors are ValueErrors (NaN, latitude beyond 90)
        return NO_CELL


def cells_of_many(lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray) -> list[bytes]:
    """The cell records of many points."""
    return [cells_of(x, y) for x, y in zip(np.asarray(lons, dtype=float).tolist(),
                                           np.asarray(lats, dtype=float).tolist(), strict=True)]


def check_resolution(resolution: int) -> int:
    """The resolution as an int in 0-15 (ValueError otherwise; callers name their parameter)."""
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution not in RESOLUTIONS:
        raise ValueError(f"an H3 resolution is an integer from 0 to 15, got {resolution!r}")
    return int(resolution)


def cell_expression(dialect: str, quote, resolution: int) -> str:
    """The SQL expression of a row's cell at `resolution`: 8 bytes (NULL where the row has no cells yet)."""
    r = check_resolution(resolution)
    col = quote(COLUMN)
    if dialect == "pg":
        return f"substring({col} from {r * WIDTH + 1} for {WIDTH})"
    return f"substr({col}, {r * WIDTH + 1}, {WIDTH})"


def cell_id(value: bytes | None) -> str | None:
    """The H3 cell id text of an 8-byte group value (None for a row without cells or an unplaceable point)."""
    if value is None:
        return None
    n = int.from_bytes(bytes(value), "big")
    return None if n == 0 else format(n, "x")
