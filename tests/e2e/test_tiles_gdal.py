"""Real clients read our vector tiles: GDAL's OGC API driver (pyogrio's GDAL 3.12) and Debian's MVT driver."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyogrio
import pytest
from pyproj import Transformer

from tests.api.conftest import SECRET
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import free_port
from tests.tiles import county
from tests.tiles.mvt import decode
from tiles.tms import get_tiling

pytestmark = pytest.mark.e2e
COUNTY_BBOX = (100.0, 33.0, 101.0, 33.5)


@pytest.fixture(scope="module", params=STORE_KINDS)
def server(request, catalog, tmp_path_factory, fresh_postgis_url) -> Iterator[str]:
    """`onemap serve` in its own process (GDAL holds the GIL while it fetches, so no in-process server)."""
    tmp = tmp_path_factory.mktemp(f"gdal-{request.param}")
    db = filled_database(request.param, catalog, tmp, fresh_postgis_url, county.fill)
    port = free_port()
    env = {**os.environ, "ONEMAP_SECRET": SECRET}
    onemap = Path(sys.executable).with_name("onemap")
    proc = subprocess.Popen([str(onemap), "serve", "--database", db, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("onemap serve did not start")
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_gdal_ogcapi_driver_reads_a_collection_through_its_tiles(server):
    minx, miny, maxx, maxy = Transformer.from_crs(4326, 3857, always_xy=True).transform_bounds(*COUNTY_BBOX)
    df = pyogrio.read_dataframe(f"OGCAPI:{server}/collections/townships", layer="Zoom level 12",
                                MINX=str(minx), MINY=str(miny), MAXX=str(maxx), MAXY=str(maxy))
    assert df.crs.to_epsg() == 3857
    assert set(df["township_code"]) == {"A", "B"}
    assert set(df["name"]) == {"Township A", "Township B"}
    x0, y0, x1, y1 = df.total_bounds
    assert x0 >= minx - 1000 and x1 <= maxx + 1000 and y0 >= miny - 1000 and y1 <= maxy + 1000


def test_debian_ogrinfo_decodes_a_saved_tile(server, tmp_path):
    token = httpx.post(f"{server}/auth/token", data={"username": "admin", "password": county.base.PASSWORD}).json()
    z = 14
    t = get_tiling("WebMercatorQuad").tms.tile(*county.TOWN_CENTRES["B"], z)
    r = httpx.get(f"{server}/tiles/WebMercatorQuad/{z}/{t.y}/{t.x}",
                  headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200
    path = tmp_path / "tile.pbf"
    path.write_bytes(r.content)
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", "-oo", f"X={t.x}", "-oo", f"Y={t.y}", "-oo", f"Z={z}",
                          f"MVT:{path}"], capture_output=True, text=True, check=True).stdout
    counts = dict(re.findall(r"Layer name: (\w+).*?Feature Count: (\d+)", out, re.S))
    expected = {name: len(feats) for name, feats in decode(r.content).items()}
    assert {"buildings", "events", "townships", "grids"} <= set(counts)
    # GDAL splits a layer by geometry type when they mix; every name it shows is one of ours
    assert {k: int(v) for k, v in counts.items()} == expected


def test_an_empty_tile_is_204_without_a_body_and_the_server_lives_on(server):
    t = get_tiling("WebMercatorQuad").tms.tile(10.0, 50.0, 12)
    with httpx.Client() as client:
        for _ in range(3):
            r = client.get(f"{server}/collections/townships/tiles/WebMercatorQuad/12/{t.y}/{t.x}")
            assert r.status_code == 204 and r.content == b""
        assert client.get(f"{server}/healthz").status_code == 200
