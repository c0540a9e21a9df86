"""Raster source errors, as core exceptions so api/errors.py maps them without knowing rasters."""

from __future__ import annotations

from geoserver.errors import StoreUnavailable


class SourceUnavailable(StoreUnavailable):
    """A configured raster file is missing or not a readable GeoTIFF; names the file. Raised at start."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"raster source {file}: {reason}", parameter="rasters")
        self.file = file
