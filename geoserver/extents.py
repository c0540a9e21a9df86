"""Layer extents per access scope, kept in memory and refreshed from the change log, not per request.

A style, a TileJSON or a collection document needs the extent of what the caller sees of every layer; a
full scan of a large layer takes seconds. Here each (layer, scope) extent is computed once; a change to the
layer grows it at once (a write's new bbox is added to every scope that sees it) and marks it stale, and a
stale extent is recomputed in the background while callers keep getting the previous one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from geoserver.access import Scope
from geoserver.changes import RESET, Change
from geoserver.store.base import Extent, Store

log = logging.getLogger("onemap.extents")


@dataclass
class _Entry:
    extent: Extent
    scope: Scope
    stale: bool = False
    refreshing: bool = False


class ExtentCache:
    """Extents by (layer, scope), grown at once by writes and recomputed in the background after them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onemap-extents")
        self._unsubscribe = store.changes.subscribe(self.on_change)

    def close(self) -> None:
        """Stop listening and refreshing (waits for a recompute under way: it uses the store)."""
        self._unsubscribe()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def extent(self, layer_id: str, scope: Scope) -> Extent:
        """What `scope` sees of the layer: from memory, computed on first use."""
        key = (layer_id, scope.cache_key())
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.stale and not entry.refreshing:
                    entry.refreshing = True
                    self._pool.submit(self._refresh, key)
                return entry.extent
        extent = self.store.extent(layer_id, scope)
        with self._lock:
            self._entries.setdefault(key, _Entry(extent, scope))
        return extent

    def _refresh(self, key: tuple[str, str]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.stale = False  # a change arriving during the recompute marks it stale again
        try:
            extent = self.store.extent(key[0], entry.scope)
        except Exception as exc:
            log.warning("extent of %s not refreshed: %s", key[0], exc)
            with self._lock:
                entry.stale, entry.refreshing = True, False
            return
        with self._lock:
            entry.extent, entry.refreshing = extent, False

    def on_change(self, change: Change) -> None:
        """Grow the extents that see the written feature now; mark the layer's extents for a recompute."""
        with self._lock:
            if change.op == RESET:
                self._entries.clear()
                return
            for (layer_id, _), entry in self._entries.items():
                if layer_id != change.layer_id:
                    continue
                entry.stale = True
                if change.after is not None and entry.scope.sees(change.township_after, change.properties):
                    entry.extent = _grown(entry.extent, change.after)


def _grown(extent: Extent, bbox: tuple[float, float, float, float]) -> Extent:
    if extent.bbox is None:
        return replace(extent, bbox=tuple(bbox))
    b = extent.bbox
    return replace(extent, bbox=(min(b[0], bbox[0]), min(b[1], bbox[1]), max(b[2], bbox[2]), max(b[3], bbox[3])))
