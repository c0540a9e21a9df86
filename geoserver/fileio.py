"""Loading features from GIS files (GeoJSON, GeoPackage, Shapefile, CSV) and exporting layers to files."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj
import shapely

from geoserver.access import Scope
from geoserver.catalog import Layer
from geoserver.errors import BadInput, LoadError
from geoserver.features import Feature, check_feature
from geoserver.store.base import Store

LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")
EXPORT_FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON", "csv": "CSV"}


def read_file(path: Path, layer: Layer, crs: str | None = None) -> tuple[list[Feature], list[str]]:
    """Checked features from a file, reprojected to lon/lat, and the names of columns that were ignored.

    Raises LoadError naming the file, the row (1-based, as a person counts data rows) and the field.
    """
    name = str(path)
    if not path.exists():
        raise LoadError("no such file", file=name)
    frame = _read_frame(path, crs)
    ignored = [c for c in frame.columns if c != "geometry" and not layer.has_prop(c) and c not in ("fid", "id")]
    features: list[Feature] = []
    columns = [c for c in frame.columns if layer.has_prop(c)]
    geoms = frame.geometry.values
    records = frame[columns].to_dict("records") if columns else [{}] * len(frame)
    for i, (geom, record) in enumerate(zip(geoms, records, strict=True), start=1):
        props = {k: _clean(v) for k, v in record.items()}
        try:
            features.append(check_feature(layer, Feature(None, geom, props)))
        except BadInput as exc:
            raise LoadError(exc.message, file=name, row=i, field=exc.parameter) from None
    return features, ignored


def _read_frame(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    name = str(path)
    target = None
    if crs:
        try:
            target = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError:
            raise LoadError(f"unknown CRS {crs!r}", file=name, field="crs") from None
    if path.suffix.lower() == ".csv":
        frame = _read_csv(path, target)
    else:
        try:
            frame = gpd.read_file(path, engine="pyogrio")
        except Exception as exc:  # the reader's own message is the most useful thing to show
            raise LoadError(f"cannot read as a GIS file: {exc}", file=name) from None
        if frame.crs is None and target is None:
            raise LoadError("the file declares no CRS; pass --crs (e.g. EPSG:4490)", file=name, field="crs")
        if target is not None and frame.crs is None:
            frame = frame.set_crs(target)
    try:
        return frame.to_crs("EPSG:4326")
    except Exception as exc:
        raise LoadError(f"cannot reproject to EPSG:4326: {exc}", file=name, field="crs") from None


def _read_csv(path: Path, crs: pyproj.CRS | None) -> gpd.GeoDataFrame:
    name = str(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise LoadError(f"cannot read as CSV: {exc}", file=name) from None
    lower = {c.lower(): c for c in table.columns}
    lon = next((lower[n] for n in LON_NAMES if n in lower), None)
    lat = next((lower[n] for n in LAT_NAMES if n in lower), None)
    if lon is None or lat is None:
        raise LoadError(f"a CSV needs longitude/latitude columns (one of {LON_NAMES} and {LAT_NAMES})",
                        file=name, field="lon/lat")
    xs, ys = [], []
    for i, (x, y) in enumerate(zip(table[lon], table[lat], strict=True), start=1):
        try:
            xs.append(float(x))
            ys.append(float(y))
        except ValueError:
            raise LoadError(f"coordinates must be numbers, got {x!r}, {y!r}", file=name, row=i,
                            field=lon if not _is_number(x) else lat) from None
    props = table.drop(columns=[lon, lat]).replace({"": None})
    return gpd.GeoDataFrame(props, geometry=shapely.points(xs, ys), crs=crs or "EPSG:4326")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _clean(value: Any) -> Any:
    """Missing values (NaN, NaT, None) as None; numpy scalars as Python values."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def load_file(store: Store, layer: Layer, path: Path, crs: str | None = None,
              replace: bool = False) -> tuple[int, list[str]]:
    """Load a file into a layer in one transaction; returns (features written, ignored columns)."""
    features, ignored = read_file(path, layer, crs)
    count = store.bulk_load(layer.id, features, replace=replace)
    return count, ignored


def iter_export_rows(store: Store, layer: Layer, scope: Scope) -> Iterator[dict[str, Any]]:
    """Rows of a layer as dicts with an `id`, the properties and a `geometry`."""
    for f in store.iter_features(layer.id, scope):
        yield {"id": f.id, **f.properties, "geometry": f.geometry}


def export_layer(store: Store, layer: Layer, path: Path, fmt: str, scope: Scope) -> int:
    """Write a layer (within the scope) to a GeoPackage, GeoJSON or CSV file; returns the feature count."""
    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"format must be one of {', '.join(EXPORT_FORMATS)}", parameter="format")
    rows = list(iter_export_rows(store, layer, scope))
    columns = ["id", *layer.property_names, "geometry"]
    frame = gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs="EPSG:4326")
    for p in layer.properties:  # text types that GDAL writes faithfully
        if p.type in ("datetime", "date"):
            frame[p.name] = frame[p.name].map(lambda v: v.isoformat() if v is not None else None)
    if fmt == "csv":
        frame = frame.assign(wkt=shapely.to_wkt(frame.geometry.values, rounding_precision=7))
        pd.DataFrame(frame.drop(columns="geometry")).to_csv(path, index=False)
    else:
        frame.to_file(path, driver=EXPORT_FORMATS[fmt], layer=layer.id, engine="pyogrio")
    return len(frame)
