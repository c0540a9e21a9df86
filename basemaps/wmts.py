"""WMTS 1.0.0 for legacy clients: the capabilities document and the KVP GetTile request, over the sources."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

import morecantile

from basemaps.render import FORMATS, TileFormat, tile_format
from basemaps.sources import RasterRegistry
from geoserver.errors import BadInput

NS = {"": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1",
      "xlink": "http://www.w3.org/1999/xlink"}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
_W, _O, _X = (f"{{{NS[k]}}}" for k in ("", "ows", "xlink"))
# Zoom levels offered to WMTS clients: enough for the orthophoto's native resolution.
MAX_LEVEL = 20
# The one style every layer has (its capabilities say so; a GetTile naming another is refused).
STYLE = "default"
# Well-known scale sets a client may recognise by name (WMTS 1.0.0 Annex E).
WELL_KNOWN = {"WebMercatorQuad": "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"}


def _sub(parent: ET.Element, tag: str, text: str | None = None, attrib: dict | None = None,
         **kw: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {**(attrib or {}), **kw})
    if text is not None:
        el.text = text
    return el


def _matrix_set(contents: ET.Element, tms: morecantile.TileMatrixSet) -> None:
    el = _sub(contents, _W + "TileMatrixSet")
    _sub(el, _O + "Identifier", tms.id)
    _sub(el, _O + "SupportedCRS", f"urn:ogc:def:crs:EPSG::{tms.crs.to_epsg()}")
    if tms.id in WELL_KNOWN:
        _sub(el, _W + "WellKnownScaleSet", WELL_KNOWN[tms.id])
    for matrix in tms.tileMatrices[: MAX_LEVEL + 1]:
        m = _sub(el, _W + "TileMatrix")
        _sub(m, _O + "Identifier", matrix.id)
        _sub(m, _W + "ScaleDenominator", repr(matrix.scaleDenominator))
        # The origin in the CRS's own axis order (latitude first for EPSG:4490), as WMTS wants it.
        _sub(m, _W + "TopLeftCorner", " ".join(repr(float(v)) for v in matrix.pointOfOrigin))
        _sub(m, _W + "TileWidth", str(matrix.tileWidth))
        _sub(m, _W + "TileHeight", str(matrix.tileHeight))
        _sub(m, _W + "MatrixWidth", str(matrix.matrixWidth))
        _sub(m, _W + "MatrixHeight", str(matrix.matrixHeight))


@dataclass(frozen=True)
class WmtsLayer:
    """One layer offered over WMTS: an id, a title and its lon/lat bounds."""

    id: str
    title: str
    bounds: tuple[float, float, float, float]


def raster_layers(registry: RasterRegistry) -> list[WmtsLayer]:
    """Every raster source as a WMTS layer."""
    return [WmtsLayer(s.id, s.title, s.bounds) for s in registry]


def capabilities(layers: list[WmtsLayer], matrix_sets: Mapping[str, morecantile.TileMatrixSet],
                 base_url: str) -> bytes:
    """The WMTS 1.0.0 capabilities XML: every layer in every matrix set and format."""
    root = ET.Element(_W + "Capabilities", {"version": "1.0.0"})
    ident = _sub(root, _O + "ServiceIdentification")
    _sub(ident, _O + "Title", "onemap base maps")
    _sub(ident, _O + "ServiceType", "OGC WMTS")
    _sub(ident, _O + "ServiceTypeVersion", "1.0.0")
    ops = _sub(root, _O + "OperationsMetadata")
    for name in ("GetCapabilities", "GetTile"):
        op = _sub(ops, _O + "Operation", name=name)
        get = _sub(_sub(_sub(op, _O + "DCP"), _O + "HTTP"), _O + "Get", attrib={_X + "href": f"{base_url}/wmts?"})
        allowed = _sub(_sub(get, _O + "Constraint", name="GetEncoding"), _O + "AllowedValues")
        _sub(allowed, _O + "Value", "KVP")
    contents = _sub(root, _W + "Contents")
    for source in layers:
        layer = _sub(contents, _W + "Layer")
        _sub(layer, _O + "Title", source.title)
        west, south, east, north = source.bounds
        box = _sub(layer, _O + "WGS84BoundingBox")
        _sub(box, _O + "LowerCorner", f"{west!r} {south!r}")
        _sub(box, _O + "UpperCorner", f"{east!r} {north!r}")
        _sub(layer, _O + "Identifier", source.id)
        style = _sub(layer, _W + "Style", isDefault="true")
        _sub(style, _O + "Identifier", STYLE)
        for fmt in FORMATS.values():
            _sub(layer, _W + "Format", fmt.media_type)
        for tms_id in matrix_sets:
            _sub(_sub(layer, _W + "TileMatrixSetLink"), _W + "TileMatrixSet", tms_id)
        for fmt in FORMATS.values():
            template = (f"{base_url}/wmts/1.0.0/{source.id}/{{Style}}/{{TileMatrixSet}}/{{TileMatrix}}/"
                        f"{{TileRow}}/{{TileCol}}.{fmt.name}")
            _sub(layer, _W + "ResourceURL", format=fmt.media_type, resourceType="tile", template=template)
    for tms in matrix_sets.values():
        _matrix_set(contents, tms)
    _sub(root, _W + "ServiceMetadataURL", attrib={_X + "href": f"{base_url}/wmts/1.0.0/WMTSCapabilities.xml"})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@dataclass(frozen=True)
class GetTile:
    """A parsed KVP GetTile request."""

    layer: str
    tms: str
    z: int
    row: int
    col: int
    format: TileFormat


def check_style(style: str, parameter: str = "Style") -> None:
    """BadInput naming `parameter` unless `style` is the one style offered (an empty one means it too)."""
    if style not in ("", STYLE):
        raise BadInput(f"{parameter} must be {STYLE!r}, the only style offered; got {style[:40]!r}",
                       parameter=parameter)


def parse_kvp(params: Mapping[str, str]) -> GetTile | None:
    """A GetTile request from KVP parameters (names case-insensitive); None for GetCapabilities.

    Raises BadInput naming the parameter that is missing or malformed.
    """
    kvp = {k.lower(): v for k, v in params.items()}
    if kvp.get("service", "WMTS").upper() != "WMTS":
        raise BadInput("SERVICE must be WMTS", parameter="SERVICE")
    request = kvp.get("request", "GetCapabilities")
    if request.lower() == "getcapabilities":
        return None
    if request.lower() != "gettile":
        raise BadInput(f"REQUEST must be GetCapabilities or GetTile, got {request!r}", parameter="REQUEST")
    missing = [n for n in ("layer", "tilematrixset", "tilematrix", "tilerow", "tilecol") if not kvp.get(n)]
    if missing:
        raise BadInput(f"GetTile needs {', '.join(n.upper() for n in missing)}", parameter=missing[0].upper())
    check_style(kvp.get("style", ""), "STYLE")
    numbers = {}
    for name in ("tilematrix", "tilerow", "tilecol"):
        try:
            numbers[name] = int(kvp[name].rsplit(":", 1)[-1])
        except ValueError:
            raise BadInput(f"{name.upper()} must be an integer, got {kvp[name]!r}", parameter=name.upper()) from None
    return GetTile(kvp["layer"], kvp["tilematrixset"], numbers["tilematrix"], numbers["tilerow"],
                   numbers["tilecol"], tile_format(kvp.get("format", "image/png"), parameter="FORMAT"))
