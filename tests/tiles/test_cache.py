"""The tile cache on its own: bounded in megabytes, the disk tier, exact invalidation, no stale write-back."""

from __future__ import annotations

from geoserver.changes import Change
from tiles.cache import TileCache, TileKey
from tiles.tms import WEB_MERCATOR, get_tiling

POINT = (100.75, 33.25)


def _key(z, x, y, layers=("events",), scope="*"):
    return TileKey(layers, WEB_MERCATOR, z, x, y, scope)


def _tile_at(z, lon=POINT[0], lat=POINT[1]):
    t = get_tiling(WEB_MERCATOR).tms.tile(lon, lat, z)
    return t.x, t.y


def test_hits_do_not_render_again():
    cache = TileCache(1)
    calls = []
    for _ in range(3):
        tile = cache.get_or_render(_key(10, 1, 1), lambda: calls.append(1) or b"abc")
    assert tile.content == b"abc" and len(calls) == 1 and tile.etag.startswith('"')


def test_memory_is_bounded_in_megabytes():
    cache = TileCache(1)
    for i in range(40):
        cache.get_or_render(_key(14, i, 0), lambda: b"x" * 100_000)
    assert cache.size_bytes <= 1024 * 1024
    assert 5 <= len(cache) <= 10
    # least recently used went first
    calls = []
    cache.get_or_render(_key(14, 39, 0), lambda: calls.append(1) or b"")
    cache.get_or_render(_key(14, 0, 0), lambda: calls.append(1) or b"")
    assert calls == [1]


def test_a_change_drops_the_tiles_covering_it_at_every_zoom_and_scope_only():
    cache = TileCache(8, margin=64 / 4096)
    near, far = {}, {}
    for z in range(6, 18):
        near[z] = _tile_at(z)
        far[z] = _tile_at(z, 100.25, 33.25)
        for scope in ("*", "A", "B"):
            cache.get_or_render(_key(z, *near[z], scope=scope), lambda: b"n")
            cache.get_or_render(_key(z, *far[z], scope=scope), lambda: b"f")
        cache.get_or_render(_key(z, *near[z], layers=("buildings",)), lambda: b"b")
        cache.get_or_render(_key(z, *near[z], layers=("townships", "events")), lambda: b"c")
    cache.on_change(Change(1, "events", 7, "insert", after=(POINT[0], POINT[1], POINT[0], POINT[1])))
    rendered = []
    for z in range(6, 18):
        for scope in ("*", "A", "B"):
            cache.get_or_render(_key(z, *near[z], scope=scope), lambda: rendered.append("near") or b"n")
            cache.get_or_render(_key(z, *far[z], scope=scope), lambda: rendered.append("far") or b"f")
        cache.get_or_render(_key(z, *near[z], layers=("buildings",)), lambda: rendered.append("other") or b"b")
        cache.get_or_render(_key(z, *near[z], layers=("townships", "events")),
                            lambda: rendered.append("combined") or b"c")
    assert rendered.count("near") == 3 * 12  # every zoom, every scope
    assert "far" not in rendered  # (where both share a tile, "near" re-rendered it first)
    assert rendered.count("combined") == 12
    assert "other" not in rendered


def test_a_write_during_a_render_is_not_cached_stale():
    cache = TileCache(1)
    x, y = _tile_at(14)

    def render_then_write():
        cache.on_change(Change(2, "events", 7, "insert", after=(*POINT, *POINT)))
        return b"old"

    assert cache.get_or_render(_key(14, x, y), render_then_write).content == b"old"
    assert cache.get_or_render(_key(14, x, y), lambda: b"new").content == b"new"


def test_disk_tier_survives_a_restart_and_is_invalidated(tmp_path):
    x, y = _tile_at(15)
    TileCache(1, tmp_path).get_or_render(_key(15, x, y), lambda: b"disk")
    fresh = TileCache(1, tmp_path)
    assert fresh.get_or_render(_key(15, x, y), lambda: b"rendered").content == b"disk"
    TileCache(1, tmp_path).invalidate("events", (*POINT, *POINT))
    assert TileCache(1, tmp_path).get_or_render(_key(15, x, y), lambda: b"rendered").content == b"rendered"
