"""The county's rasters as Cloud-Optimized GeoTIFFs: a DEM (valleys along the rivers, where the settlements
lie) and an orthophoto-like RGB image shaded from it (meadow, forest, scree, snow, rivers, roads, roofs).

Both share one EPSG:4326 grid of 1 arc-second (~30 m) over the county's bounding box; outside the outline
the DEM holds its nodata value and the image is masked (an internal mask band).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import geometry_mask, rasterize
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy
from rasterio.transform import from_origin

from sample_data.county import County
from sample_data.scales import rng_for
from sample_data.settlements import TemplePlan, settlement_footprints
from sample_data.spatial import county_outline, geometry_to_lonlat, to_local
from sample_data.terrain import VALLEY_WIDTH

RESOLUTION = 1 / 3600  # degrees (1 arc-second); the small scale uses a coarser grid
COARSE_DEG = 16 / 3600  # the valley fields are computed this far apart and interpolated
DEM_NODATA = -9999.0
ELEVATION_RANGE = (3500.0, 4800.0)
COG_OPTIONS = dict(driver="COG", COMPRESS="DEFLATE", LEVEL=6, PREDICTOR="YES", BLOCKSIZE=512,
                   NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER")


def raster_grid(resolution: float = RESOLUTION) -> tuple[rasterio.Affine, int, int]:
    """The transform, width and height of the grid both rasters share."""
    minx, miny, maxx, maxy = county_outline().bounds
    left = math.floor(minx / resolution) * resolution
    top = math.ceil(maxy / resolution) * resolution
    width = math.ceil((maxx - left) / resolution)
    height = math.ceil((top - miny) / resolution)
    return from_origin(left, top, resolution, resolution), width, height


def _resize(coarse: np.ndarray, height: int, width: int, step: float, smooth: bool = False) -> np.ndarray:
    """Bilinear (or, with `smooth`, smoothstep) interpolation of a coarse grid (node k at pixel k * step)."""
    fy = np.minimum(np.arange(height, dtype=np.float32) / step, coarse.shape[0] - 1.001)
    fx = np.minimum(np.arange(width, dtype=np.float32) / step, coarse.shape[1] - 1.001)
    y0, x0 = fy.astype(np.int32), fx.astype(np.int32)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    if smooth:  # value noise without the lattice showing through
        wy, wx = wy * wy * (3 - 2 * wy), wx * wx * (3 - 2 * wx)
    c = coarse.astype(np.float32)
    rows = c[:, x0] * (1 - wx) + c[:, x0 + 1] * wx  # along x on the coarse rows first: cheap
    out = rows[y0]
    out *= 1 - wy
    out += rows[y0 + 1] * wy
    return out


def _noise(shape: tuple[int, int], rng: np.random.Generator, cells: tuple[int, ...], power: float,
           resolution: float) -> np.ndarray:
    """Fractal value noise: random lattices of the given cell sizes (arc-seconds), smaller ones weaker."""
    out = np.zeros(shape, np.float32)
    for arcsec in cells:
        cell = max(2, round(arcsec / 3600 / resolution))
        lattice = rng.standard_normal((shape[0] // cell + 3, shape[1] // cell + 3)).astype(np.float32)
        out += _resize(lattice, *shape, float(cell), smooth=True) * (cell / cells[0]) ** power
    return out


def _pieces(county: County, size: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rivers cut into short pieces (so nearest-line queries stay cheap): lines, river index, chainage."""
    lines, owner, offset = [], [], []
    for k, river in enumerate(county.rivers):
        xy = shapely.get_coordinates(river.line)
        chain = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        for i in range(0, len(xy) - 1, size):
            lines.append(shapely.LineString(xy[i:i + size + 1]))
            owner.append(k)
            offset.append(chain[i])
    return np.array(lines), np.array(owner), np.array(offset)


def _valleys(county: County, transform: rasterio.Affine, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Distance to the nearest river, its bed elevation and its valley width, on the full grid.

    Computed exactly every COARSE_DEG and interpolated; near the rivers, where interpolation would lift
    the valley floor, the distance is capped by rasterised buffers of the rivers.
    """
    step = max(2, round(COARSE_DEG / transform.a))
    rows, cols = np.arange(0, height + step, step), np.arange(0, width + step, step)
    cc, rr = np.meshgrid(cols, rows)
    x, y = to_local(transform.c + (cc.ravel() + 0.5) * transform.a, transform.f + (rr.ravel() + 0.5) * transform.e)
    lines, owner, offset = _pieces(county)
    points = shapely.points(x, y)
    idx, dist = shapely.STRtree(lines).query_nearest(points, return_distance=True, all_matches=False)
    piece = np.empty(len(points), int)
    piece[idx[0]] = idx[1]
    d = np.empty(len(points))
    d[idx[0]] = dist
    along = offset[piece] + shapely.line_locate_point(lines[piece], points)
    bed = np.empty(len(points))
    width_m = np.empty(len(points))
    for k, river in enumerate(county.rivers):
        mine = owner[piece] == k
        bed[mine] = river.bed_at(along[mine])
        width_m[mine] = VALLEY_WIDTH[river.order]
    fields = [_resize(a.reshape(rr.shape), height, width, float(step)) for a in (d, bed, width_m)]
    near = fields[0]
    all_rivers = shapely.MultiLineString([r.line for r in county.rivers])
    for radius in (300.0, 220.0, 150.0, 100.0, 60.0, 25.0):
        band = rasterize([(geometry_to_lonlat(all_rivers.buffer(radius, 4)), 1)], out_shape=(height, width),
                         transform=transform, dtype="uint8").astype(bool)
        np.minimum(near, radius, out=near, where=band)
    return tuple(fields)


def elevation(county: County, seed: int, resolution: float = RESOLUTION
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The DEM (metres, float32), the inside-the-county mask and the river mask, on the raster grid."""
    transform, width, height = raster_grid(resolution)
    rng = rng_for(seed, "terrain")
    d, bed, valley = _valleys(county, transform, width, height)
    shape = (height, width)
    hills = _noise(shape, rng, (256, 64), 0.9, resolution)  # where the mountains are higher
    rough = _noise(shape, rng, (64, 24, 8, 3), 0.9, resolution)  # ridges and gullies
    open_ = 1.0 - np.exp(-((d / valley) ** 1.6))  # 0 on the valley floor, 1 on the mountains
    relief = 500.0 + 140.0 * hills
    z = bed + relief * open_ + 140.0 * rough * (0.1 + 0.9 * open_)
    rivers = rasterize([(geometry_to_lonlat(r.line), 1) for r in county.rivers], out_shape=shape,
                       transform=transform, all_touched=True, dtype="uint8").astype(bool)
    z[rivers] = np.minimum(z[rivers], bed[rivers] - 2.0)
    z = np.clip(z, *ELEVATION_RANGE).astype(np.float32)
    inside = geometry_mask([county_outline()], out_shape=shape, transform=transform, invert=True)
    return z, inside, rivers


def _hillshade(z: np.ndarray, transform: rasterio.Affine) -> np.ndarray:
    lat = transform.f + transform.e * z.shape[0] / 2
    dx = transform.a * 111_320.0 * math.cos(math.radians(lat))
    dy = -transform.e * 110_574.0
    gy, gx = np.gradient(z, dy, dx)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, alt = math.radians(315.0), math.radians(45.0)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0, 1).astype(np.float32), slope.astype(np.float32), aspect.astype(np.float32)


def _built_up(county: County, temples: list[TemplePlan], seed: int, transform: rasterio.Affine,
              shape: tuple[int, int]) -> np.ndarray:
    """The share of each pixel covered by roofs (building footprint area over pixel area)."""
    cover = np.zeros(shape, np.float32)
    pixel_m2 = (transform.a * 111_320.0 * math.cos(math.radians(32.9))) * (-transform.e * 110_574.0)
    batches = [settlement_footprints(county, i, seed) for i in range(len(county.settlements))]
    batches += [t.footprints for t in temples]
    for fp in batches:
        if not len(fp):
            continue
        ring = fp.rings
        lon, lat = ring[:, :4, 0].mean(axis=1), ring[:, :4, 1].mean(axis=1)
        area_deg = 0.5 * np.abs(np.sum(ring[:, :-1, 0] * ring[:, 1:, 1] - ring[:, 1:, 0] * ring[:, :-1, 1], axis=1))
        area = area_deg * 111_320.0 * math.cos(math.radians(32.9)) * 110_574.0
        col = ((lon - transform.c) / transform.a).astype(int)
        row = ((lat - transform.f) / transform.e).astype(int)
        ok = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
        np.add.at(cover, (row[ok], col[ok]), (area[ok] / pixel_m2).astype(np.float32))
    return np.clip(cover * 1.6, 0, 1)


def imagery(county: County, temples: list[TemplePlan], seed: int, z: np.ndarray, rivers: np.ndarray,
            resolution: float = RESOLUTION) -> np.ndarray:
    """An orthophoto-like RGB (3, h, w) uint8 image of the county, shaded from the DEM."""
    transform, _, _ = raster_grid(resolution)
    rng = rng_for(seed, "imagery")
    shade, slope, aspect = _hillshade(z, transform)
    texture = _noise(z.shape, rng, (24, 3), 0.6, transform.a)
    north = np.cos(aspect) > 0.3
    palette = {  # upper elevation of the band -> colour
        "forest": np.array([52, 78, 44], np.float32), "meadow": np.array([104, 128, 66], np.float32),
        "alpine": np.array([138, 136, 88], np.float32), "scree": np.array([142, 128, 110], np.float32),
        "rock": np.array([160, 156, 150], np.float32), "snow": np.array([236, 238, 242], np.float32),
    }
    e = z + 40.0 * texture
    w = {
        "forest": np.clip((3950 - e) / 150, 0, 1) * north * np.clip(slope / 0.25, 0, 1),
        "meadow": np.clip((4150 - e) / 200, 0, 1),
        "alpine": np.clip(1 - np.abs(e - 4250) / 250, 0, 1),
        "scree": np.clip(1 - np.abs(e - 4520) / 160, 0, 1),
        "rock": np.clip((e - 4550) / 150, 0, 1),
        "snow": np.clip((e - 4700) / 60, 0, 1) * (north | (e > 4760)),
    }
    total = sum(w.values()) + 1e-3
    rgb = sum(w[k][None] * palette[k][:, None, None] for k in palette) / total[None]
    rgb *= (0.55 + 0.65 * shade)[None] * (1.0 + 0.06 * texture)[None]
    roads = rasterize([(shapely.offset_curve(geometry_to_lonlat(r.line), 0.0004), 1) for r in county.rivers
                       if r.order <= 2], out_shape=z.shape, transform=transform, dtype="uint8").astype(bool)
    rgb[:, roads] = np.array([168, 156, 132], np.float32)[:, None]
    roofs = _built_up(county, temples, seed, transform, z.shape)
    roof_colour = np.array([196, 190, 184], np.float32)[:, None, None]
    rgb = rgb * (1 - roofs[None]) + roof_colour * roofs[None]
    rgb[:, rivers] = np.array([72, 98, 112], np.float32)[:, None]
    return np.clip(rgb, 1, 255).astype(np.uint8)


def write_cog(path: Path, data: np.ndarray, *, nodata: float | None = None, mask: np.ndarray | None = None,
              resampling: str = "average", resolution: float = RESOLUTION) -> Path:
    """Write (bands, h, w) data as a COG: 512 tiles, DEFLATE, overviews; nodata or an internal mask."""
    transform, width, height = raster_grid(resolution)
    profile = dict(driver="GTiff", width=width, height=height, count=data.shape[0], dtype=data.dtype.name,
                   crs="EPSG:4326", transform=transform, nodata=nodata)
    tmp = path.with_name(path.name + ".partial")
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data)
            if mask is not None:
                ds.write_mask(mask.astype(np.uint8) * 255)
        with mem.open() as src:
            rio_copy(src, tmp, OVERVIEW_RESAMPLING=resampling.upper(), RESAMPLING="BILINEAR", **COG_OPTIONS)
    tmp.replace(path)
    return path


def write_rasters(out_dir: Path, county: County, temples: list[TemplePlan], seed: int,
                  resolution: float = RESOLUTION) -> dict[str, dict]:
    """Write dem.tif and imagery.tif into out_dir; returns a small report of each (size, shape)."""
    z, inside, rivers = elevation(county, seed, resolution)
    rgb = imagery(county, temples, seed, z, rivers, resolution)
    dem = np.where(inside, z, np.float32(DEM_NODATA))[None]
    write_cog(out_dir / "dem.tif", dem, nodata=DEM_NODATA, resampling="average", resolution=resolution)
    del dem
    write_cog(out_dir / "imagery.tif", rgb, mask=inside, resampling="average", resolution=resolution)
    report = {}
    for name in ("dem.tif", "imagery.tif"):
        with rasterio.open(out_dir / name) as ds:
            report[name] = {"bytes": (out_dir / name).stat().st_size, "width": ds.width, "height": ds.height,
                            "bands": ds.count, "overviews": ds.overviews(1)}
    valid = z[inside]
    report["dem.tif"]["elevation"] = [float(valid.min()), float(valid.max())]
    return report
