"""Real clients against a real server: GDAL's OAPIF driver and OWSLib read what the store holds."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import owslib.ogcapi
import pytest
import uvicorn
from owslib.ogcapi.features import Features
from shapely.geometry import shape

from api.app import create_app
from api.settings import Settings
from geoserver.access import Scope
from geoserver.features import FeatureQuery
from geoserver.store import open_store
from tests.api import county
from tests.api.conftest import county_db  # noqa: F401  (the tiny county, per store)
from tests.e2e.live_server import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def owslib_headers_restored() -> Iterator[None]:
    """OWSLib 0.35 updates one module-level headers dict for every client; keep each test's keys its own."""
    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)


@pytest.fixture(scope="module")
def server(county_db) -> Iterator[str]:  # noqa: F811
    """The app over the tiny county, served by uvicorn on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(Settings(database=county_db, secret="e2e-secret-of-at-least-thirty-two-bytes", public_url=url))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def store(county_db, catalog):  # noqa: F811
    s = open_store(county_db, catalog)
    s.open()
    yield s
    s.close()


def ogrinfo(*args: str) -> str:
    out = subprocess.run(["ogrinfo", "-ro", "-so", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _count(text: str) -> int:
    return int(text.split("Feature Count: ")[1].split()[0])


def test_ogrinfo_reads_public_collection(server, store):
    out = ogrinfo(f"OAPIF:{server}/collections/townships", "townships")
    assert _count(out) == store.extent("townships", Scope.everything()).count
    assert "township_code" in out


def test_ogrinfo_bbox_and_where(server):
    out = ogrinfo("-spat", "100.0", "33.0", "100.4", "33.5", f"OAPIF:{server}/collections/townships", "townships")
    assert _count(out) == 1
    out = ogrinfo("-where", "township_code = 'B'", f"OAPIF:{server}/collections/townships", "townships")
    assert _count(out) == 1


def test_ogrinfo_with_api_key_reads_protected_collection(server):
    out = ogrinfo("--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {county.EXTERNAL_KEY}",
                  f"OAPIF:{server}/collections/grids", "grids")
    assert _count(out) == 4
    bad = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{server}/collections/grids", "grids"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0  # anonymous: the collection does not exist


def test_owslib_features(server, store):
    w = Features(server)
    ids = [c["id"] for c in w.collections()["collections"]]
    assert "townships" in ids and "events" not in ids
    items = w.collection_items("townships", bbox=[100.0, 33.0, 100.4, 33.5], limit=10)
    assert items["numberMatched"] == 1
    stored = store.query("townships", FeatureQuery(bbox=(100.0, 33.0, 100.4, 33.5)), Scope.everything())
    assert shape(items["features"][0]["geometry"]).equals(stored.features[0].geometry)
    assert "township_code" in w.collection_queryables("townships")["properties"]
    leader = Features(server, headers={"X-API-Key": county.LEADER_KEY})
    ev = leader.collection_items("events", limit=100)
    assert ev["numberMatched"] == 10
    assert {f["properties"]["township_code"] for f in ev["features"]} == {"A"}
