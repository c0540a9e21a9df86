"""CesiumJS (npm, served by us) in headless Chromium loads the white model and draws the buildings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import rasterio

from api.app import create_app
from api.settings import Settings
from tests.conftest import STORE_KINDS, filled_database
from tests.e2e.live_server import live_server
from tests.tiles import white_model_county as county

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-of-at-least-thirty-two-bytes"


@pytest.fixture(params=STORE_KINDS)
def server(request, catalog, tmp_path, fresh_postgis_url):
    for need in ("cesium", "playwright-core"):
        if not (ROOT / "node_modules" / need).is_dir():
            pytest.fail(f"npm {need} is missing: run `make npm` (make test does)")
    db = filled_database(request.param, catalog, tmp_path, fresh_postgis_url, county.fill)
    with live_server(create_app(Settings(database=db, secret=SECRET, sample_dir=tmp_path))) as url:
        yield url


def test_cesium_draws_the_white_model_without_errors_or_outside_requests(server, tmp_path):
    import httpx

    token = httpx.post(f"{server}/auth/token", data={"username": "admin", "password": county.PASSWORD}).json()
    shot = tmp_path / "white-model.png"
    done = subprocess.run(
        ["node", str(ROOT / "tests" / "e2e" / "page_screenshot.mjs"),
         f"{server}/viewer/white-model.html#token={token['access_token']}", str(shot),
         "window.__tileset && window.__tileset.tilesLoaded"],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ready"] is True, report
    assert report["errors"] == [], report
    assert report["outside"] == []
    with rasterio.open(shot) as png:
        rgb = png.read([1, 2, 3]).astype(int)
    # The globe is drawn in dark slate (#2b3a4a); the white model is light grey, the temple hall red.
    light = (rgb.min(axis=0) > 150).sum()
    red = ((rgb[0] > 120) & (rgb[1] < 90) & (rgb[2] < 90)).sum()
    assert light > 500, f"no buildings drawn; screenshot at {shot}"
    assert red > 5, f"the temple is not told apart; screenshot at {shot}"
