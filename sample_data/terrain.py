"""Rivers and the elevation model: valleys along the rivers, where the county's settlements lie.

Everything here is in the local metric frame (see spatial.py). The rivers are built hierarchically -- two
main rivers at fixed places, a tributary through every township seat off them, and a stream through every
village -- so each settlement sits on a valley floor of the elevation model made from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from sample_data.spatial import to_local

# (lon, lat, river-bed elevation in m): the Mako River (玛柯河) from the north-west through the county seat
# to the southern tip, and the Duoke River (多柯河) across the east.
MAIN_RIVERS = (
    ("玛柯河", ((99.78, 33.31, 3990), (100.08, 33.16, 3860), (100.35, 33.06, 3740), (100.55, 33.00, 3640),
               (100.665, 32.968, 3580), (100.74, 32.93, 3545), (100.765, 32.865, 3535), (100.71, 32.78, 3525), (100.67, 32.63, 3510), (100.645, 32.49, 3500))),
    ("多柯河", ((101.28, 33.02, 3780), (101.08, 32.80, 3600), (101.10, 32.64, 3540), (101.12, 32.50, 3510))),
)
VALLEY_WIDTH = {1: 1600.0, 2: 1000.0, 3: 550.0}  # m, by river order
RISE_PER_M = {2: 0.007, 3: 0.014}  # river-bed gradient upstream of a confluence


@dataclass(frozen=True)
class River:
    """One river in the local frame: its line, the bed elevation along it and its order (1 = main)."""

    name: str
    line: shapely.LineString
    chainage: np.ndarray  # distance along the line of each profile point (m)
    bed: np.ndarray  # river-bed elevation at those points (m)
    order: int

    def bed_at(self, along: np.ndarray) -> np.ndarray:
        """The bed elevation at distances `along` the line."""
        return np.interp(along, self.chainage, self.bed)

    def direction_at(self, x: float, y: float) -> float:
        """The angle (radians, from east) of the river's course near a point."""
        s = self.line.project(shapely.Point(x, y))
        a = self.line.interpolate(max(0.0, s - 150.0))
        b = self.line.interpolate(min(self.line.length, s + 150.0))
        return float(np.arctan2(b.y - a.y, b.x - a.x))


def _meander(xy: np.ndarray, anchors: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """The polyline densified every 150 m and bent sideways by smooth waves that vanish at the anchors."""
    seg = np.hypot(*np.diff(xy, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], max(2, int(s[-1] / 150.0) + 1))
    x, y = np.interp(t, s, xy[:, 0]), np.interp(t, s, xy[:, 1])
    dx, dy = np.gradient(x), np.gradient(y)
    norm = np.hypot(dx, dy) + 1e-9
    offset = np.zeros_like(t)
    for wavelength in (9000.0, 3500.0, 1400.0):
        phase = rng.uniform(0, 2 * np.pi)
        offset += amplitude * (wavelength / 9000.0) ** 0.7 * np.sin(2 * np.pi * t / wavelength + phase)
    if len(anchors):
        d = np.min(np.hypot(x[:, None] - anchors[None, :, 0], y[:, None] - anchors[None, :, 1]), axis=1)
        offset *= np.clip(d / 2500.0, 0.0, 1.0) ** 2
    return np.column_stack([x - offset * dy / norm, y + offset * dx / norm])


def _profile(line: shapely.LineString, points: np.ndarray, beds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    along = shapely.line_locate_point(line, shapely.points(points))
    order = np.argsort(along)
    along, beds = along[order], beds[order]
    # Keep the bed falling downstream (along the line) however the control points project.
    return along, np.minimum.accumulate(beds)


def main_rivers(rng: np.random.Generator, anchors: np.ndarray) -> list[River]:
    """The two main rivers, bent naturally but passing exactly through the seats given as anchors."""
    rivers = []
    for name, control in MAIN_RIVERS:
        c = np.array(control)
        x, y = to_local(c[:, 0], c[:, 1])
        xy = _meander(np.column_stack([x, y]), np.vstack([np.column_stack([x, y]), anchors]), rng, 700.0)
        line = shapely.LineString(xy)
        chain, bed = _profile(line, np.column_stack([x, y]), c[:, 2])
        rivers.append(River(name, line, chain, bed, 1))
    return rivers


def branch(name: str, through: tuple[float, float], rivers: list[River], order: int, length_up: float,
           rng: np.random.Generator) -> River:
    """A river through a settlement: from its source, through the settlement, to the nearest bigger river."""
    p = shapely.Point(through)
    parent = min((r for r in rivers if r.order < order), key=lambda r: r.line.distance(p))
    along = parent.line.project(p)
    conf = parent.line.interpolate(along)
    sx, sy = through
    vx, vy = sx - conf.x, sy - conf.y
    dist = float(np.hypot(vx, vy))
    if dist < 300.0:  # the settlement sits on the parent river: branch off sideways
        angle = parent.direction_at(conf.x, conf.y) + np.pi / 2 * rng.choice([-1, 1])
        vx, vy = np.cos(angle), np.sin(angle)
    else:
        vx, vy = vx / dist, vy / dist
    turn = rng.uniform(-0.5, 0.5)
    ux, uy = vx * np.cos(turn) - vy * np.sin(turn), vx * np.sin(turn) + vy * np.cos(turn)
    src = (sx + ux * length_up, sy + uy * length_up)
    pts = [src, through] + ([(conf.x, conf.y)] if dist >= 300.0 else [])
    xy = _meander(np.array(pts), np.array([through, (conf.x, conf.y)]), rng, 350.0 if order == 2 else 180.0)
    line = shapely.LineString(xy)
    z_conf = float(parent.bed_at(np.array([along]))[0])
    # Chainage runs from the source: the bed rises gently to the settlement, then steeply to the source.
    at = line.project(shapely.Point(through))
    z_at = z_conf + min(RISE_PER_M[order] * 0.5 * (line.length - at), 120.0)
    chain = np.array([0.0, at, line.length]) if at > 0 else np.array([0.0, line.length])
    bed = np.array([z_at + RISE_PER_M[order] * 2 * at, z_at, z_conf]) if at > 0 else np.array([z_at, z_conf])
    return River(name, line, chain, bed, order)


def valley_fields(rivers: list[River], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point: distance to the nearest river, that river's bed elevation there and its valley width."""
    pts = shapely.points(x.ravel(), y.ravel())
    best_d = np.full(pts.shape, np.inf)
    best_bed = np.zeros(pts.shape)
    best_w = np.zeros(pts.shape)
    for river in rivers:
        d = shapely.distance(pts, river.line)
        closer = d < best_d
        if closer.any():
            along = shapely.line_locate_point(river.line, pts[closer])
            best_d[closer] = d[closer]
            best_bed[closer] = river.bed_at(along)
            best_w[closer] = VALLEY_WIDTH[river.order]
    shape = np.shape(x)
    return best_d.reshape(shape), best_bed.reshape(shape), best_w.reshape(shape)
