"""Base-map routes over HTTP: OGC API map tiles, XYZ, WMTS, tile metadata and each error's status."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from rasterio.io import MemoryFile

from api.app import create_app
from api.settings import Settings
from basemaps.errors import SourceUnavailable
from tests.basemaps.basemap_cogs import BOUNDS, make_dem, make_imagery

WMTS = "{http://www.opengis.net/wmts/1.0}"
OWS = "{http://www.opengis.net/ows/1.1}"
TILE = "/collections/imagery/map/tiles/WebMercatorQuad/14/6620/13160"  # over the test COG


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    make_imagery(d / "imagery.tif")
    make_dem(d / "dem.tif")
    settings = Settings(database=str(d / "county.gpkg"), sample_dir=d, migrate_on_start=True,
                        public_url="http://testserver")
    with TestClient(create_app(settings)) as c:
        yield c


def image(response) -> tuple[str, tuple[int, ...]]:
    with MemoryFile(response.content) as mem, mem.open() as ds:
        return ds.driver, ds.read().shape


@pytest.mark.parametrize("query,headers,media", [
    ("", {}, "image/png"),
    ("?f=jpeg", {}, "image/jpeg"),
    ("?f=webp", {}, "image/webp"),
    ("", {"Accept": "image/webp,image/*;q=0.8"}, "image/webp"),
    ("?f=png", {"Accept": "image/jpeg"}, "image/png"),
])
def test_map_tile_format_from_f_then_accept_then_png(client, query, headers, media):
    r = client.get(TILE + query, headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == media
    assert image(r)[1][1:] == (256, 256)


def test_imagery_is_public_and_cacheable(client):
    r = client.get(TILE)  # no credentials at all
    assert r.status_code == 200 and "public" in r.headers["cache-control"]


@pytest.mark.parametrize("source", ["imagery", "dem", "hillshade"])
def test_xyz_and_cgcs2000_tiles(client, source):
    r = client.get(f"/basemaps/{source}/14/13160/6620.webp")
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    r = client.get(f"/collections/{source}/map/tiles/CGCS2000Quad/14/5193/25554?f=png")
    assert r.status_code == 200 and image(r)[0] == "PNG"


def test_tileset_metadata(client):
    doc = client.get("/collections/dem/map/tiles/CGCS2000Quad").json()
    assert doc["dataType"] == "map" and doc["tileMatrixSetId"] == "CGCS2000Quad"
    assert doc["boundingBox"]["lowerLeft"] == pytest.approx([BOUNDS[0], BOUNDS[1]])
    templates = [link["href"] for link in doc["links"] if link["rel"] == "item"]
    assert any(t.endswith("/collections/dem/map/tiles/CGCS2000Quad/{tileMatrix}/{tileRow}/{tileCol}?f=webp")
               for t in templates)
    listing = client.get("/collections/imagery/map/tiles").json()
    assert {t["tileMatrixSetId"] for t in listing["tilesets"]} == {"WebMercatorQuad", "CGCS2000Quad"}


def test_wmts_capabilities_kvp_and_restful_agree(client):
    kvp = client.get("/wmts?SERVICE=WMTS&REQUEST=GetCapabilities")
    rest = client.get("/wmts/1.0.0/WMTSCapabilities.xml")
    assert kvp.status_code == rest.status_code == 200
    assert kvp.content == rest.content
    root = ET.fromstring(rest.content)
    contents = root.find(WMTS + "Contents")
    layers = {el.findtext(OWS + "Identifier") for el in contents.findall(WMTS + "Layer")}
    assert layers == {"imagery", "dem", "hillshade"}
    sets = {el.findtext(OWS + "Identifier"): el for el in contents.findall(WMTS + "TileMatrixSet")}
    assert set(sets) == {"WebMercatorQuad", "CGCS2000Quad"}
    assert sets["WebMercatorQuad"].findtext(WMTS + "WellKnownScaleSet").endswith("GoogleMapsCompatible")
    assert sets["CGCS2000Quad"].findtext(OWS + "SupportedCRS") == "urn:ogc:def:crs:EPSG::4490"
    first = sets["CGCS2000Quad"].find(WMTS + "TileMatrix")
    assert first.findtext(WMTS + "TopLeftCorner") == "90.0 -180.0"  # latitude first, as EPSG:4490 orders it
    templates = [el.get("template") for el in contents.iter(WMTS + "ResourceURL")]
    assert "http://testserver/wmts/1.0.0/imagery/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png" \
        in templates


def test_wmts_gettile_kvp_and_restful(client):
    kvp = client.get("/wmts", params={
        "service": "WMTS", "request": "GetTile", "version": "1.0.0", "layer": "imagery", "style": "default",
        "format": "image/jpeg", "tilematrixset": "WebMercatorQuad", "tilematrix": "14", "tilerow": "6620",
        "tilecol": "13160"})
    assert kvp.status_code == 200 and kvp.headers["content-type"] == "image/jpeg"
    rest = client.get("/wmts/1.0.0/imagery/default/WebMercatorQuad/14/6620/13160.jpeg")
    assert rest.content == kvp.content


@pytest.mark.parametrize("path,status,parameter", [
    ("/collections/roads/map/tiles/WebMercatorQuad/1/0/0", 404, "source"),
    ("/collections/imagery/map/tiles/Mars/1/0/0", 404, "tileMatrixSetId"),
    ("/collections/imagery/map/tiles/WebMercatorQuad/3/8/0", 400, "tileRow"),
    ("/collections/imagery/map/tiles/WebMercatorQuad/3/0/9", 400, "tileCol"),
    ("/collections/imagery/map/tiles/WebMercatorQuad/30/0/0", 400, "tileMatrix"),
    ("/collections/imagery/map/tiles/WebMercatorQuad/1/0/0?f=gif", 400, "f"),
    ("/basemaps/imagery/1/0/0.tiff", 400, "format"),
    ("/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=imagery", 400, "TILEMATRIXSET"),
    ("/wmts?SERVICE=WMTS&REQUEST=GetMap", 400, "REQUEST"),
    ("/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=imagery&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX=a&TILEROW=0"
     "&TILECOL=0", 400, "TILEMATRIX"),
    ("/wmts/1.0.0/imagery/nosuchstyle/WebMercatorQuad/1/0/0.png", 400, "Style"),
    ("/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=imagery&STYLE=nosuchstyle&TILEMATRIXSET=WebMercatorQuad"
     "&TILEMATRIX=1&TILEROW=0&TILECOL=0", 400, "STYLE"),
])
def test_bad_input_is_problem_json_naming_the_parameter(client, path, status, parameter):
    r = client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["parameter"] == parameter


def test_a_missing_configured_cog_stops_the_start_naming_it(tmp_path):
    settings = Settings(database=str(tmp_path / "county.gpkg"), sample_dir=tmp_path,
                        rasters=(tmp_path / "ortho-2025.tif",), migrate_on_start=True)
    with pytest.raises(SourceUnavailable, match="ortho-2025.tif"):
        with TestClient(create_app(settings)):
            pass


def test_the_style_bounds_each_base_map_to_its_coverage(client):
    """A map asks for no base-map tile outside the raster: the style's sources carry the coverage."""
    style = client.get("/styles/onemap.json").json()
    box = client.get("/collections/imagery/map/tiles/WebMercatorQuad").json()["boundingBox"]
    coverage = box["lowerLeft"] + box["upperRight"]
    imagery = style["sources"]["imagery"]
    assert imagery["bounds"] == pytest.approx(coverage, abs=1e-5)
    assert all("bounds" in style["sources"][s] for s in ("dem", "hillshade"))


def test_raster_tiles_are_drawn_by_a_few_threads_of_their_own(client, monkeypatch):
    # GDAL and PROJ keep state in every thread that reads a raster: drawn on the app's 40-thread pool, the
    # server's memory grew for as long as new threads took their first tile. 40 requests at once: still a few.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from api.routers import basemaps as routes
    from basemaps.sources import HANDLES_PER_FILE

    threads: set[str] = set()
    original = routes.render_tile

    def spy(*args):
        threads.add(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(routes, "render_tile", spy)
    paths = [f"/basemaps/{source}/{z}/{x}/{y}.png" for source in ("imagery", "hillshade")
             for z, x, y in ((14, 13160, 6620), (15, 26320, 13240), (15, 26321, 13241), (13, 6580, 3310))] * 5
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda path: client.get(path).status_code, paths))
    assert statuses == [200] * len(paths)
    assert threads and all(name.startswith("onemap-raster") for name in threads)
    assert len(threads) <= HANDLES_PER_FILE


def test_a_raster_tile_drawn_once_is_answered_again_from_memory(client, monkeypatch):
    """Every screen of a command centre asks for the same county view: the second asker of a tile gets the same
    bytes without GDAL reading and encoding it again; another format is another tile."""
    import api.routers.basemaps as routes

    drawn = []
    real = routes.render_tile
    monkeypatch.setattr(routes, "render_tile", lambda *a: drawn.append(a[2:]) or real(*a))
    path = "/basemaps/imagery/14/13161/6621.png"
    first = client.get(path)
    before = len(drawn)  # 1, or 0 if an earlier test drew this tile
    again = client.get(path)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["content-type"] == "image/png"
    assert len(drawn) == before
    webp = client.get(path.replace(".png", ".webp"))
    assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
    assert len(drawn) == before + 1


def test_the_kept_raster_tiles_stay_within_their_bound():
    from basemaps.rendered import RenderedTiles

    kept = RenderedTiles(max_mb=1)
    for i in range(40):
        kept.put(i, bytes(100_000))
    assert kept.size_bytes <= 1024 * 1024
    assert kept.get(39) is not None and kept.get(0) is None  # the oldest went first
    assert RenderedTiles(max_mb=0).get(1) is None
    empty = RenderedTiles(max_mb=0)
    empty.put(1, b"x")
    assert empty.get(1) is None
