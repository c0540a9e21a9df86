"""Raster imagery and terrain from Cloud-Optimized GeoTIFFs; WMTS for legacy clients."""
