"""GDAL's WMTS driver (Debian gdal-bin) reads our capabilities and fetches pixels matching the COG itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from api.app import create_app
from api.settings import Settings
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sample_dir() -> Path:
    d = Path(os.environ.get("ONEMAP_SAMPLE_DIR", "data/sample"))
    if not (d / "imagery.tif").exists():
        pytest.fail(f"no sample county at {d}; `make test` generates it (onemap sample --out {d})")
    return d


@pytest.fixture(scope="module")
def server(sample_dir):
    with live_server(create_app(Settings(database=str(sample_dir / "county.gpkg"), sample_dir=sample_dir, jobs=False))) as url:
        yield url


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gdalinfo_lists_every_layer_in_both_matrix_sets(server):
    out = run("gdalinfo", f"WMTS:{server}/wmts/1.0.0/WMTSCapabilities.xml")
    for layer in ("imagery", "dem", "hillshade"):
        for tms in ("WebMercatorQuad", "CGCS2000Quad"):
            assert f"layer={layer},tilematrixset={tms}" in out


def _window(sample_dir: Path) -> tuple[float, float, float, float]:
    """A small lon/lat window in the middle of the orthophoto (where the town is in the sample)."""
    with rasterio.open(sample_dir / "imagery.tif") as ds:
        from rasterio.warp import transform_bounds

        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    cx, cy = (west + east) / 2, (south + north) / 2
    half = min(east - west, north - south) / 8
    return cx - half, cy + half, cx + half, cy - half


@pytest.mark.parametrize("tms", ["WebMercatorQuad", "CGCS2000Quad"])
def test_gdal_translate_fetches_the_orthophoto_as_it_is(server, sample_dir, tmp_path, tms):
    out = tmp_path / f"wmts-{tms}.tif"
    ulx, uly, lrx, lry = _window(sample_dir)
    run("gdal_translate", "-q", "-projwin_srs", "EPSG:4326", "-projwin", str(ulx), str(uly), str(lrx), str(lry),
        "-outsize", "256", "256", "-r", "bilinear",
        f"WMTS:{server}/wmts/1.0.0/WMTSCapabilities.xml,layer=imagery,tilematrixset={tms}", str(out))
    with rasterio.open(out) as got:
        fetched = got.read()
        with rasterio.open(sample_dir / "imagery.tif") as cog, WarpedVRT(
            cog, crs=got.crs, transform=got.transform, width=got.width, height=got.height,
            resampling=Resampling.bilinear,
        ) as vrt:
            direct = vrt.read(indexes=[1, 2, 3])
    assert fetched.shape[0] == 4 and (fetched[3] == 255).all()  # RGB + alpha, all inside the coverage
    for band in range(3):
        assert fetched[band].mean() == pytest.approx(direct[band].mean(), abs=3)
        hist_got = np.histogram(fetched[band], bins=16, range=(0, 256))[0]
        hist_cog = np.histogram(direct[band], bins=16, range=(0, 256))[0]
        assert np.abs(hist_got - hist_cog).sum() / hist_cog.sum() < 0.1
    assert np.corrcoef(fetched[0].ravel(), direct[0].ravel())[0, 1] > 0.9
