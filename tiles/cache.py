"""The tile cache: an LRU bounded in megabytes, an optional disk tier, and exact invalidation on writes."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geoserver.changes import RESET, Change
from tiles.tms import MAX_ZOOM, get_tiling

# Above this many tiles in one zoom's range, the disk tier drops the whole zoom instead of file by file.
_DISK_FILE_BY_FILE = 4096


@dataclass(frozen=True)
class TileKey:
    """What a cached tile depends on: its layers, its address, and the caller's scope(s)."""

    layers: tuple[str, ...]
    tms: str
    z: int
    x: int
    y: int
    scope: str
    # A filtered tile (TileFilter.cache_key()); "" for the plain tile.
    variant: str = ""

    @property
    def zxy(self) -> tuple[int, int, int]:
        """The tile's zoom, column and row."""
        return self.z, self.x, self.y

    def path(self, root: Path) -> Path:
        """Where the disk tier keeps this tile."""
        scope = hashlib.sha1((self.scope + "\n" + self.variant if self.variant else self.scope).encode()
                             ).hexdigest()[:16]
        return root / self.tms / "+".join(self.layers) / scope / str(self.z) / str(self.x) / f"{self.y}.mvt"


@dataclass(frozen=True)
class CachedTile:
    """Tile bytes (b'' for an empty tile) and their strong ETag."""

    content: bytes
    etag: str


def etag_of(content: bytes) -> str:
    """A strong ETag: the content's hash."""
    return '"' + hashlib.blake2b(content, digest_size=12).hexdigest() + '"'


class TileCache:
    """LRU of tiles bounded in bytes, optionally backed by a directory; invalidated by store Changes."""

    def __init__(self, max_mb: float, directory: Path | None = None, *, margin: float = 0.0) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.directory = Path(directory) if directory else None
        self.margin = margin
        self._entries: OrderedDict[TileKey, CachedTile] = OrderedDict()
        self._index: dict[tuple[str, str, int], dict[tuple[int, int], set[TileKey]]] = {}
        self._bytes = 0
        self._lock = threading.RLock()
        self._generation = 0
        self.hits = self.misses = 0

    # -- reads and writes -----------------------------------------------------------------------------
    def peek(self, key: TileKey) -> CachedTile | None:
        """The tile if it is in memory (never touches the disk or renders)."""
        with self._lock:
            return self._hit(key)

    def _hit(self, key: TileKey) -> CachedTile | None:
        """The in-memory tile, counted and marked most recent (call with the lock held)."""
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return hit

    def get_or_render(self, key: TileKey, render: Callable[[], bytes]) -> CachedTile:
        """The cached tile, or render it, keep it (unless a write raced the render) and return it."""
        hit, generation = self.lookup(key)
        if hit is not None:
            return hit
        disk = self._read_disk(key)
        if disk is not None:
            self._remember(key, disk)
            return disk
        return self.keep(key, render(), generation)

    def lookup(self, key: TileKey) -> tuple[CachedTile | None, int]:
        """The tile in memory, or None with the generation to hand to `keep` after rendering it."""
        with self._lock:
            return self._hit(key), self._generation

    def keep(self, key: TileKey, content: bytes, generation: int) -> CachedTile:
        """A rendered tile, kept unless a write since `generation` (from lookup) may have made it stale."""
        self.misses += 1
        tile = CachedTile(content, etag_of(content))
        with self._lock:
            if generation == self._generation:
                self._remember(key, tile)
                self._write_disk(key, tile)
        return tile

    def _remember(self, key: TileKey, tile: CachedTile) -> None:
        with self._lock:
            if key in self._entries:
                return
            size = len(tile.content) + 256
            if size > self.max_bytes:
                return
            self._entries[key] = tile
            self._bytes += size
            for layer in key.layers:
                self._index.setdefault((layer, key.tms, key.z), {}).setdefault((key.x, key.y), set()).add(key)
            while self._bytes > self.max_bytes:
                old, old_tile = self._entries.popitem(last=False)
                self._drop(old, old_tile)

    def _drop(self, key: TileKey, tile: CachedTile) -> None:
        """Account for an entry already removed from the LRU and unlink it from the index."""
        self._bytes -= len(tile.content) + 256
        for layer in key.layers:
            cells = self._index.get((layer, key.tms, key.z))
            if cells and (key.x, key.y) in cells:
                cells[(key.x, key.y)].discard(key)
                if not cells[(key.x, key.y)]:
                    del cells[(key.x, key.y)]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes held in memory (content plus a fixed overhead per entry)."""
        return self._bytes

    def clear(self) -> None:
        """Drop everything, memory and disk."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._index.clear()
            self._bytes = 0
            if self.directory and self.directory.exists():
                shutil.rmtree(self.directory, ignore_errors=True)

    # -- invalidation ----------------------------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        """Drop every cached tile, of every scope and zoom, that showed the changed features before or after.

        A `reset` (the change log no longer holds what was missed) drops everything.
        """
        if change.op == RESET:
            self.clear()
            return
        for bbox in (change.before, change.after):
            if bbox is not None:
                self.invalidate(change.layer_id, bbox)

    def invalidate(self, layer_id: str, bbox: tuple[float, float, float, float]) -> int:
        """Drop the tiles of `layer_id` (alone or combined) covering a lon/lat bbox; returns how many."""
        dropped = 0
        with self._lock:
            self._generation += 1
            for (layer, tms, z), cells in list(self._index.items()):
                if layer != layer_id:
                    continue
                cols, rows = get_tiling(tms).tiles_covering(bbox, z, self.margin)
                if len(cols) * len(rows) <= len(cells):
                    hits = [(x, y) for x in cols for y in rows if (x, y) in cells]
                else:
                    hits = [xy for xy in cells if xy[0] in cols and xy[1] in rows]
                for xy in hits:
                    for key in list(cells.get(xy, ())):
                        tile = self._entries.pop(key, None)
                        if tile is not None:
                            self._drop(key, tile)
                            dropped += 1
            if self.directory:
                self._invalidate_disk(layer_id, bbox)
        return dropped

    # -- the disk tier ---------------------------------------------------------------------------------
    def _read_disk(self, key: TileKey) -> CachedTile | None:
        if not self.directory:
            return None
        try:
            content = key.path(self.directory).read_bytes()
        except OSError:
            return None
        self.hits += 1
        return CachedTile(content, etag_of(content))

    def _write_disk(self, key: TileKey, tile: CachedTile) -> None:
        if not self.directory:
            return
        path = key.path(self.directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(tile.content)
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one

    def _invalidate_disk(self, layer_id: str, bbox: tuple[float, float, float, float]) -> None:
        assert self.directory is not None
        if not self.directory.exists():
            return
        for tms_dir in _subdirs(self.directory):
            tiling = get_tiling(tms_dir.name)
            for layers_dir in _subdirs(tms_dir):
                if layer_id not in layers_dir.name.split("+"):
                    continue
                for scope_dir in _subdirs(layers_dir):
                    for z in range(MAX_ZOOM + 1):
                        zdir = scope_dir / str(z)
                        if not zdir.exists():
                            continue
                        cols, rows = tiling.tiles_covering(bbox, z, self.margin)
                        if len(cols) * len(rows) > _DISK_FILE_BY_FILE:
                            shutil.rmtree(zdir, ignore_errors=True)
                            continue
                        for x in cols:
                            for y in rows:
                                (zdir / str(x) / f"{y}.mvt").unlink(missing_ok=True)


def _subdirs(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.is_dir()]
