"""Change notices: a store announces each committed write (layer, bbox before, bbox after) to subscribers.

Process-local today. The notice is deliberately small and plain (a layer id and two lon/lat boxes) so
that it can cross processes unchanged: a PostGIS deployment publishes it with `pg_notify('onemap_changes',
json)` in the writing transaction and every server process LISTENs and re-publishes it here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

log = logging.getLogger("onemap.events")

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Change:
    """One committed write to one layer: where the changed features were and where they are now."""

    layer_id: str
    before: BBox | None
    after: BBox | None


def bbox_of(geometry: BaseGeometry | None) -> BBox | None:
    """The lon/lat bounds of a geometry (None for none or empty)."""
    if geometry is None or geometry.is_empty:
        return None
    return tuple(geometry.bounds)  # type: ignore[return-value]


class ChangeNotifier:
    """Delivers each Change to every subscriber, synchronously, after the write has committed."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Change], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback` on every change; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @property
    def listening(self) -> bool:
        """True when anyone subscribes (writers skip the work of describing a change otherwise)."""
        return bool(self._subscribers)

    def publish(self, layer_id: str, before: BaseGeometry | BBox | None, after: BaseGeometry | BBox | None) -> None:
        """Announce a committed write; a failing subscriber is logged and never fails the write."""
        if not self._subscribers:
            return
        change = Change(layer_id, _as_bbox(before), _as_bbox(after))
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(change)
            except Exception:  # a cache must never undo a committed write
                log.exception("change subscriber failed for %s", layer_id)


def _as_bbox(value: BaseGeometry | BBox | None) -> BBox | None:
    if value is None or isinstance(value, tuple):
        return value
    return bbox_of(value)
