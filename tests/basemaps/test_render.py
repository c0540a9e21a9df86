"""Raster sources and map tiles, on small COGs made in tmp_path, decoded back as images."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.io import MemoryFile

from basemaps.errors import SourceUnavailable
from basemaps.render import FORMATS, hillshade, render_tile, tile_format
from basemaps.sources import RasterRegistry
from geoserver.errors import BadInput, NotFound
from tests.basemaps.basemap_cogs import BOUNDS, make_dem, make_imagery
from tiles.tms import CGCS2000, WEB_MERCATOR, get_tms

CENTRE = ((BOUNDS[0] + BOUNDS[2]) / 2, (BOUNDS[1] + BOUNDS[3]) / 2)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> RasterRegistry:
    d = tmp_path_factory.mktemp("cogs")
    make_imagery(d / "imagery.tif")
    make_dem(d / "dem.tif")
    return RasterRegistry.build(d)


def decode(body: bytes) -> np.ndarray:
    with MemoryFile(body) as mem, mem.open() as ds:
        return ds.read()


def test_the_sample_files_become_imagery_dem_and_a_hillshade(registry):
    assert registry.ids == ("imagery", "dem", "hillshade")
    dem = registry.get("dem")
    assert dem.kind == "ramp" and 3500 <= dem.value_range[0] < dem.value_range[1] <= 4200
    assert registry.get("imagery").bounds == pytest.approx(BOUNDS)


def test_unknown_source_is_not_found_naming_it(registry):
    with pytest.raises(NotFound, match="'roads'"):
        registry.get("roads")


@pytest.mark.parametrize("tms_id", [WEB_MERCATOR, CGCS2000])
@pytest.mark.parametrize("source", ["imagery", "dem", "hillshade"])
@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_every_source_renders_in_every_format_and_matrix_set(registry, source, fmt, tms_id):
    tms = get_tms(tms_id)
    tile = tms.tile(*CENTRE, 14)
    body = render_tile(registry.get(source), tms, tile.z, tile.y, tile.x, FORMATS[fmt])
    pixels = decode(body)
    assert pixels.shape[1:] == (256, 256)
    assert pixels[:3].std() > 0  # a picture, not a blank tile


def test_imagery_pixels_match_the_cog(registry):
    tms = get_tms(WEB_MERCATOR)
    tile = tms.tile(*CENTRE, 15)
    pixels = decode(render_tile(registry.get("imagery"), tms, tile.z, tile.y, tile.x, FORMATS["png"]))
    # The test COG encodes its column in red and its row in green: the tile's centre must agree.
    west, south, east, north = BOUNDS
    b = tms.bounds(tile)
    col = ((b.left + b.right) / 2 - west) / (east - west) * 255
    row = (north - (b.top + b.bottom) / 2) / (north - south) * 255
    assert pixels[0, 128, 128] == pytest.approx(col, abs=3)
    assert pixels[1, 128, 128] == pytest.approx(row, abs=3)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_coverage_edges_are_transparent(registry, fmt):
    tms = get_tms(WEB_MERCATOR)
    tile = tms.tile(*CENTRE, 9)  # the whole test COG is a few pixels of this tile
    pixels = decode(render_tile(registry.get("imagery"), tms, tile.z, tile.y, tile.x, FORMATS[fmt]))
    alpha = pixels[3]
    assert 0 < (alpha > 0).mean() < 0.2
    assert alpha[0, 0] == 0


def test_nodata_inside_the_file_is_transparent(registry):
    tms = get_tms(WEB_MERCATOR)
    tile = tms.tile(BOUNDS[0] + 0.003, BOUNDS[3] - 0.04, 16)  # the imagery's nodata stripe on its west side
    alpha = decode(render_tile(registry.get("imagery"), tms, tile.z, tile.y, tile.x, FORMATS["png"]))[3]
    assert (alpha == 0).all()


def test_a_tile_beyond_the_coverage_is_empty_and_transparent(registry):
    tms = get_tms(WEB_MERCATOR)
    pixels = decode(render_tile(registry.get("dem"), tms, 10, 0, 0, FORMATS["png"]))
    assert (pixels[3] == 0).all()


def test_low_zooms_read_overviews(registry):
    tms = get_tms(WEB_MERCATOR)
    tile = tms.tile(*CENTRE, 11)
    source = registry.get("imagery")
    render_tile(source, tms, tile.z, tile.y, tile.x, FORMATS["png"])
    # rasterio reads through the overview GDAL picks for a decimated window; the file has them.
    assert source.overviews == [2, 4, 8]


@pytest.mark.parametrize("z,row,col,param", [(25, 0, 0, "tileMatrix"), (3, 8, 0, "tileRow"), (3, 0, -1, "tileCol")])
def test_tiles_outside_the_matrix_are_bad_input(registry, z, row, col, param):
    with pytest.raises(BadInput) as err:
        render_tile(registry.get("imagery"), get_tms(WEB_MERCATOR), z, row, col, FORMATS["png"])
    assert err.value.parameter == param


def test_formats_by_name_media_type_or_alias():
    assert tile_format("JPG").name == "jpeg"
    assert tile_format("image/webp").name == "webp"
    with pytest.raises(BadInput, match="png, jpeg, webp"):
        tile_format("gif")


def test_hillshade_lights_slopes_facing_the_sun():
    y, x = np.mgrid[0:10, 0:10].astype("float64")
    facing_nw = hillshade((x + y) * 10, 10, 10)  # falling away to the north-west, towards a sun at 315 deg
    facing_se = hillshade(-(x + y) * 10, 10, 10)
    flat = hillshade(np.zeros((10, 10)), 10, 10)
    assert facing_nw.shape == (8, 8)
    assert facing_nw.mean() > flat.mean() > facing_se.mean()


def test_a_missing_configured_cog_fails_naming_the_file(tmp_path):
    missing = tmp_path / "ortho2024.tif"
    with pytest.raises(SourceUnavailable, match="ortho2024.tif: file not found"):
        RasterRegistry.build(None, [missing])


def test_a_corrupt_configured_cog_fails_naming_the_file(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(SourceUnavailable, match="broken.tif: not a readable GeoTIFF"):
        RasterRegistry.build(None, [bad])


def test_a_configured_cog_is_served_by_its_file_stem(tmp_path):
    extra = make_dem(tmp_path / "landslide_dem.tif", size=256)
    registry = RasterRegistry.build(None, [extra])
    assert registry.ids == ("landslide_dem",)
    assert registry.get("landslide_dem").kind == "ramp"


def test_hillshade_has_no_dark_rim_where_the_dem_has_no_data(registry):
    tms = get_tms(WEB_MERCATOR)
    tile = tms.tile(BOUNDS[0] + 0.012, BOUNDS[3] - 0.006, 15)  # the test DEM's nodata corner crosses this tile
    pixels = decode(render_tile(registry.get("hillshade"), tms, tile.z, tile.y, tile.x, FORMATS["png"]))
    dem = decode(render_tile(registry.get("dem"), tms, tile.z, tile.y, tile.x, FORMATS["png"]))
    shaded = pixels[0][pixels[3] > 0]
    assert (pixels[3] == 0).any() and shaded.size > 0
    # Pixels whose 3x3 neighbourhood touches nodata are left out rather than shaded off -9999.
    assert ((pixels[3] > 0) <= (dem[3] > 0)).all() and (pixels[3] > 0).sum() < (dem[3] > 0).sum()
    assert shaded.min() > 60  # the gentle test hill


def test_many_threads_share_a_few_open_handles_and_get_the_same_tiles(tmp_path):
    # The server renders from a pool of 40 threads: a handle per thread and file kept GDAL state for each alive
    # (the process grew by hundreds of MB under imagery load). Now a few handles per file are lent in turn.
    from concurrent.futures import ThreadPoolExecutor

    from basemaps.sources import HANDLES_PER_FILE

    make_imagery(tmp_path / "imagery.tif")
    make_dem(tmp_path / "dem.tif")
    registry = RasterRegistry.build(tmp_path)
    tms = get_tms(WEB_MERCATOR)
    tiles = [(source, tms.tile(CENTRE[0] + dx * 0.004, CENTRE[1] + dy * 0.004, 15))
             for source in ("imagery", "hillshade") for dx in range(-3, 4) for dy in range(-2, 3)]
    one_by_one = [render_tile(registry.get(s), tms, t.z, t.y, t.x, FORMATS["png"]) for s, t in tiles]
    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(lambda st: render_tile(registry.get(st[0]), tms, st[1].z, st[1].y, st[1].x,
                                                        FORMATS["png"]), tiles * 3))
    assert together == one_by_one * 3
    assert 1 <= registry.get("imagery").handles.opened <= HANDLES_PER_FILE
    assert registry.get("dem").handles is registry.get("hillshade").handles  # one file, one set of handles
    assert registry.get("dem").handles.opened <= HANDLES_PER_FILE


def test_the_malloc_thresholds_are_fixed_unless_the_environment_sets_them(monkeypatch):
    """On this glibc machine the server fixes both thresholds itself (an imagery server's heap otherwise grows
    for hours); an operator's MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ is left to glibc."""
    from basemaps.sources import fix_malloc_thresholds

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert fix_malloc_thresholds() is True
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "262144")
    assert fix_malloc_thresholds() is False
