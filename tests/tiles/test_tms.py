"""Our tile matrix sets against morecantile itself, and the tile arithmetic the cache relies on."""

from __future__ import annotations

import random

import morecantile
import pytest

from geoserver.errors import BadInput, NotFound
from tiles.tms import CGCS2000, WEB_MERCATOR, get_tiling, get_tms, tms_document, tms_ids

COUNTY = (100.9, 32.9)  # lon, lat inside Banma County


def test_the_contract_ids_are_served():
    assert set(tms_ids()) == {"WebMercatorQuad", "CGCS2000Quad"}
    with pytest.raises(NotFound):
        get_tms("GoogleMapsCompatible")


@pytest.mark.parametrize("z", [0, 3, 8, 12, 16, 19])
def test_web_mercator_tile_bounds_match_morecantile(z):
    ref = morecantile.tms.get("WebMercatorQuad")
    t = ref.tile(*COUNTY, z)
    tiling = get_tiling(WEB_MERCATOR)
    assert tiling.bounds(z, t.x, t.y) == pytest.approx(tuple(ref.xy_bounds(t)))
    assert tiling.lonlat_bounds(z, t.x, t.y) == pytest.approx(tuple(ref.bounds(t)))


@pytest.mark.parametrize("z", [0, 1, 5, 10, 15, 18])
def test_cgcs2000_quad_is_a_geographic_quad_in_epsg_4490(z):
    tms = get_tms(CGCS2000)
    assert tms.crs.to_epsg() == 4490
    m = tms.matrix(z)
    assert (m.matrixWidth, m.matrixHeight) == (2 ** (z + 1), 2 ** z)
    t = tms.tile(*COUNTY, z)
    w, s, e, n = get_tiling(CGCS2000).bounds(z, t.x, t.y)
    assert e - w == pytest.approx(180 / 2 ** z) and n - s == pytest.approx(180 / 2 ** z)
    assert w <= COUNTY[0] < e and s <= COUNTY[1] < n
    # the same cells as WorldCRS84Quad, whose shape it takes
    crs84 = morecantile.tms.get("WorldCRS84Quad")
    assert tuple(crs84.bounds(crs84.tile(*COUNTY, z))) == pytest.approx((w, s, e, n))


def test_tms_documents_are_tms_2_json():
    doc = tms_document(CGCS2000)
    assert doc["id"] == "CGCS2000Quad" and doc["crs"].endswith("/EPSG/0/4490")
    assert doc["tileMatrices"][0]["pointOfOrigin"] == [90.0, -180.0]  # EPSG:4490 is latitude first
    assert tms_document(WEB_MERCATOR)["tileMatrices"][0]["matrixWidth"] == 1


@pytest.mark.parametrize("tms_id", [WEB_MERCATOR, CGCS2000])
def test_out_of_matrix_addresses_name_the_parameter(tms_id):
    tiling = get_tiling(tms_id)
    with pytest.raises(BadInput) as e:
        tiling.check(3, 0, 8)
    assert e.value.parameter == "tileRow"
    with pytest.raises(BadInput) as e:
        tiling.check(3, 2 ** 3 * (2 if tms_id == CGCS2000 else 1), 0)
    assert e.value.parameter == "tileCol"
    with pytest.raises(BadInput) as e:
        tiling.check(23, 0, 0)
    assert e.value.parameter == "tileMatrix"


@pytest.mark.parametrize("tms_id", [WEB_MERCATOR, CGCS2000])
def test_tiles_covering_a_box_are_the_tiles_morecantile_lists(tms_id):
    tiling = get_tiling(tms_id)
    bbox = (100.71, 32.81, 100.95, 33.07)
    for z in (8, 11, 14):
        cols, rows = tiling.tiles_covering(bbox, z)
        ours = {(x, y) for x in cols for y in rows}
        ref = {(t.x, t.y) for t in tiling.tms.tiles(*bbox, zooms=[z])}
        assert ours == ref


@pytest.mark.parametrize("tms_id", tms_ids())
def test_tile_bounds_are_morecantiles_own(tms_id):
    # Tiling.bounds / lonlat_bounds answer without morecantile on the hot path; they must not drift from it.
    tiling, tms = get_tiling(tms_id), get_tms(tms_id)
    rnd = random.Random(5)
    for _ in range(2000):
        z = rnd.randint(0, 20)
        m = tms.matrix(z)
        x, y = rnd.randrange(m.matrixWidth), rnd.randrange(m.matrixHeight)
        xy = tms.xy_bounds(morecantile.Tile(x, y, z))
        assert tiling.bounds(z, x, y) == (xy.left, xy.bottom, xy.right, xy.top)
        ll = tms.bounds(morecantile.Tile(x, y, z))
        assert tiling.lonlat_bounds(z, x, y) == pytest.approx((ll.left, ll.bottom, ll.right, ll.top), abs=1e-9)
