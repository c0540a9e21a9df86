"""Every absolute link starts with one base: ONEMAP_PUBLIC_URL, else an allowed Host, else the listen address.

A Host header nobody configured (`Host: evil.example`) must never reach a link: not in items, collections,
TileJSON, tileset metadata, WMTS capabilities, the style, HTML pages or a Location header.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.links import LinkBase
from api.settings import Settings
from tests.api.conftest import SECRET
from tests.api.county import PASSWORD
from tests.basemaps.basemap_cogs import make_imagery

URL = re.compile(r"https?://[^\s\"'<>\\]+")
# Hosts a link of ours could carry in these tests; any other URL (opengis.net vocabulary, licences) is not ours.
OUR_HOSTS = {"evil.example", "127.0.0.1", "localhost", "testserver", "map.county.gov.cn", "map.county.lan"}
TILES = "/tiles/WebMercatorQuad"
# Documents whose absolute links must all start with the base (each carries at least one).
LINKED = [
    "/", "/collections", "/collections/townships", "/collections/townships/queryables",
    "/collections/townships/items?limit=1", "/collections/townships/items?limit=1&offset=1",
    "/?f=html", "/collections/townships/items?f=html",
    "/tileMatrixSets", "/tiles", TILES, f"{TILES}/tilejson.json",  # (the 3D tileset: tests/tiles/test_white_model_api.py)
    "/collections/townships/tiles", "/collections/townships/tiles/WebMercatorQuad",
    "/collections/townships/tiles/WebMercatorQuad/tilejson.json",
    "/styles/onemap.json",
    "/collections/imagery/map/tiles", "/collections/imagery/map/tiles/WebMercatorQuad",
    "/wmts/1.0.0/WMTSCapabilities.xml", "/wmts?SERVICE=WMTS&REQUEST=GetCapabilities",
]


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    """A sample directory with a small orthophoto, so the map-tile and WMTS documents list a raster."""
    d = tmp_path_factory.mktemp("rasters")
    make_imagery(d / "imagery.tif", size=256)
    return d


def app_for(county_db, rasters, **settings):
    return create_app(Settings(database=county_db, secret=SECRET, sample_dir=rasters, **settings))


def our_urls(text: str) -> list[str]:
    return [u for u in URL.findall(text) if urlsplit(u).hostname in OUR_HOSTS]


def starts_with(url: str, base: str) -> bool:
    return url == base or url.startswith((base + "/", base + "?"))


def assert_links_start_with(client: TestClient, base: str) -> None:
    """Every document's own links start with `base`; no foreign host appears anywhere in it."""
    fid = client.get("/collections/townships/items?limit=1").json()["features"][0]["id"]
    for path in [*LINKED, f"/collections/townships/items/{fid}"]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "evil.example" not in r.text, path
        urls = our_urls(r.text)
        assert urls, (path, "no absolute link")
        wrong = [u for u in urls if not starts_with(u, base)]
        assert not wrong, (path, wrong[:5])
    token = client.post("/auth/token", data={"username": "worker-A1", "password": PASSWORD}).json()["access_token"]
    event = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.1, 33.2]},
             "properties": {"title": "link check", "type": "garbage", "reported_at": "2024-06-01T08:00:00Z"}}
    created = client.post("/collections/events/items", json=event,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"})
    assert created.status_code == 201, created.text
    assert created.headers["location"].startswith(f"{base}/collections/events/items/")


def test_the_public_url_is_every_link_whatever_the_host(county_db, rasters):
    with TestClient(app_for(county_db, rasters, public_url="https://map.county.gov.cn/onemap/"),
                    base_url="http://evil.example") as c:
        assert_links_start_with(c, "https://map.county.gov.cn/onemap")


def test_a_foreign_host_gets_the_listen_address(county_db, rasters):
    with TestClient(app_for(county_db, rasters, listen="127.0.0.1:8000"), base_url="http://evil.example") as c:
        assert_links_start_with(c, "http://127.0.0.1:8000")


def test_an_allowed_host_is_followed(county_db, rasters):
    with TestClient(app_for(county_db, rasters), base_url="http://localhost:8123") as c:
        assert_links_start_with(c, "http://localhost:8123")
    app = app_for(county_db, rasters, allowed_hosts=("map.county.lan",), listen="0.0.0.0:9000")
    with TestClient(app, base_url="https://map.county.lan:8443") as c:
        assert_links_start_with(c, "https://map.county.lan:8443")
    with TestClient(app, base_url="http://evil.example") as c:  # a wildcard bind answers on loopback
        items = c.get("/collections/townships/items?limit=1").json()
        assert {link["href"].split("/collections")[0] for link in items["links"]} == {"http://127.0.0.1:9000"}


@pytest.mark.parametrize("host", ["localhost@evil.example", "localhost:80/evil.example", "localhost evil.example",
                                  "evil.example", "localhost.evil.example", "127.0.0.1:8000:evil.example", ""])
def test_a_host_header_that_is_not_exactly_an_allowed_host_is_not_echoed(host):
    links = LinkBase(Settings(listen="127.0.0.1:8000"))
    assert not links.allows(host)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8000", "127.0.0.1:8123", "localhost."])
def test_loopback_names_are_allowed_by_default(host):
    assert LinkBase(Settings(listen="127.0.0.1:8000")).allows(host)


def test_an_allowed_host_with_a_port_allows_only_that_port():
    links = LinkBase(Settings(allowed_hosts=("map.county.lan:8443", "[::1]")))
    assert links.allows("map.county.lan:8443") and links.allows("[::1]:8000")
    assert not links.allows("map.county.lan:9999") and not links.allows("localhost")


def test_header_injection_over_http_falls_back_to_the_listen_address(county_db, rasters):
    with TestClient(app_for(county_db, rasters)) as c:
        r = c.get("/collections/townships/items?limit=1", headers={"Host": "localhost:80/evil.example"})
        assert r.status_code == 200
        assert "evil.example" not in r.text
        assert r.json()["links"][0]["href"].startswith("http://127.0.0.1:8000/collections/townships/items")
