"""The one-map page in headless Chromium: MapLibre draws the sample county from /styles/onemap.json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio

from api.app import create_app
from api.settings import Settings
from tests.conftest import postgis_url, sample_dir
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TOWN = "632626100"


@pytest.fixture(scope="module", params=["embedded", "postgis"])
def server(request):
    for need in ("maplibre-gl", "playwright-core"):
        if not (ROOT / "node_modules" / need).is_dir():
            pytest.fail(f"npm {need} is missing: run `make npm` (make test does)")
    db = str(sample_dir() / "county.gpkg") if request.param == "embedded" else postgis_url()
    with live_server(create_app(Settings(database=db, sample_dir=sample_dir(), jobs=False))) as url:
        yield url


def shoot(url: str, out: Path) -> dict:
    done = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "page_screenshot.mjs"), url, str(out)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as png:
        return png.read([1, 2, 3]).astype(int)


def near(rgb: np.ndarray, colour: str, tol: int = 40) -> int:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return int(((abs(rgb[0] - r) < tol) & (abs(rgb[1] - g) < tol) & (abs(rgb[2] - b) < tol)).sum())


def test_anonymous_visitors_see_the_county_outline_over_imagery_and_nothing_private(server, tmp_path):
    shot = tmp_path / "anonymous.png"
    report = shoot(f"{server}/viewer/#10/32.93/100.74", shot)
    assert report["ready"] is True, report
    assert report["errors"] == [] and report["outside"] == [] and report["failed"] == [], report
    assert "imagery" in report["layers"]
    assert not any(layer.startswith(("events", "buildings", "grids")) for layer in report["layers"])
    rgb = pixels(shot)
    assert near(rgb, "#1f4e79", 30) > 200, f"no township boundaries drawn; see {shot}"
    assert rgb.std() > 10, f"the map is blank; see {shot}"


def test_the_operator_sees_events_the_public_does_not(server, tmp_path):
    token = httpx.post(f"{server}/auth/token", data={"username": "operator", "password": "onemap"}).json()
    shot = tmp_path / "operator.png"
    report = shoot(f"{server}/viewer/#token={token['access_token']}", shot)
    assert report["ready"] is True, report
    assert report["errors"] == [] and report["failed"] == [], report
    assert any(layer.startswith("events") for layer in report["layers"]), report["layers"]
