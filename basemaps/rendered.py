"""Rendered raster tiles kept for the next caller: a raster does not change while the server runs, so a tile
drawn once (GDAL read, warp, encode: tens of milliseconds) is answered again from memory. Bounded in bytes,
least recently used first out; every screen of a command centre opening the county view asks for the same
tiles."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class RenderedTiles:
    """An LRU of encoded tiles, at most `max_mb` megabytes (0: keep nothing)."""

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._tiles: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The tile if it is kept (marked most recent), else None."""
        with self._lock:
            body = self._tiles.get(key)
            if body is None:
                self.misses += 1
                return None
            self._tiles.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep a tile, dropping the least recently used beyond the bound."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, old = self._tiles.popitem(last=False)
                self._bytes -= len(old)

    @property
    def size_bytes(self) -> int:
        return self._bytes
