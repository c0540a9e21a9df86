"""Area layers as WMTS outline tiles on both stores: the catalog style, and the caller's scope."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import morecantile
import numpy as np
from rasterio.io import MemoryFile

from tests.api.conftest import login

WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"
TMS = morecantile.tms.get("WebMercatorQuad")


def layers_offered(client, headers=None) -> dict[str, str]:
    root = ET.fromstring(client.get("/wmts/1.0.0/WMTSCapabilities.xml", headers=headers or {}).content)
    return {el.findtext(OWS + "Identifier"): el.find(OWS + "WGS84BoundingBox").findtext(OWS + "UpperCorner")
            for el in root.find(WMTS + "Contents").findall(WMTS + "Layer")}


def tile_at(client, layer: str, lon: float, lat: float, z: int, headers=None):
    t = TMS.tile(lon, lat, z)
    return client.get(f"/wmts/1.0.0/{layer}/default/WebMercatorQuad/{z}/{t.y}/{t.x}.png", headers=headers or {})


def rgba(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    with MemoryFile(response.content) as mem, mem.open() as ds:
        return ds.read()


def test_capabilities_offer_the_area_layers_each_caller_may_read(client):
    anonymous = layers_offered(client)
    assert "townships" in anonymous and "grids" not in anonymous and "events" not in anonymous
    leader = layers_offered(client, login(client, "leader-A"))
    assert "grids" in leader
    assert leader["grids"].split()[0] == "100.5"  # township A's grids end where B begins


def test_township_outlines_are_drawn_in_the_catalog_style(client):
    pixels = rgba(tile_at(client, "townships", 100.5, 33.25, 10))  # the A/B border runs through this tile
    ink = pixels[3] > 0
    assert 0 < ink.mean() < 0.2
    assert tuple(pixels[:3, ink][:, 0]) == (0x1F, 0x4E, 0x79)


def test_a_leader_sees_no_grid_lines_of_another_township(client):
    admin = rgba(tile_at(client, "grids", 100.75, 33.25, 12, login(client, "admin")))
    leader = rgba(tile_at(client, "grids", 100.75, 33.25, 12, login(client, "leader-A")))
    assert (admin[3] > 0).any()  # the B1/B2 grid boundary
    assert (leader[3] == 0).all()
    own = rgba(tile_at(client, "grids", 100.25, 33.25, 12, login(client, "leader-A")))
    assert (own[3] > 0).any()


def test_grids_do_not_exist_for_anonymous_callers(client):
    r = tile_at(client, "grids", 100.25, 33.25, 12)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
