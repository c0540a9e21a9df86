"""Idempotent requests (the Idempotency-Key header): the first request runs, every retry gets its response.

The key lives in the store, not in process memory, so retries that land on another server process are
answered the same way. A key is scoped to its owner (the principal) and its endpoint; the same key with a
different request is refused, and a retry that arrives while the first request is still running waits for it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from geoserver.errors import BadInput, Conflict, OneMapError
from geoserver.store.base import IdempotencyRecord, Store

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A claim without a response after this long belongs to a process that died: the key may run again.
LEASE_SECONDS = 60.0
WAIT_SECONDS = 10.0  # how long a retry waits for the first request before answering "still in progress"
POLL_SECONDS = 0.05


class KeyReused(OneMapError):
    """An Idempotency-Key already used for a different request (same owner and endpoint)."""


def parse_key(value: str) -> str:
    """The key from the header's text (a bare token or a quoted sf-string); BadInput if empty or too long."""
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadInput(f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters", parameter=HEADER)
    return key


def request_hash(*parts: Any) -> str:
    """A fingerprint of what a request asks for (JSON-equal bodies give equal hashes)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_once(store: Store, owner: str, endpoint: str, key: str, fingerprint: str,
             action: Callable[[], dict[str, Any]], *, wait_seconds: float = WAIT_SECONDS,
             lease_seconds: float = LEASE_SECONDS) -> tuple[dict[str, Any], bool]:
    """Run `action` once per (owner, endpoint, key) and return (its response, replayed?).

    The claim of the key, everything `action` writes (with its change-log rows) and the response kept for
    retries commit in ONE transaction: a request that dies anywhere leaves either nothing (a retry runs it)
    or all of it (a retry gets the response) -- never a write without its key. A retry that arrives while
    the first request is still running waits for it (PostgreSQL: on the key's row; SQLite: on the write lock).

    Args:
        store: where keys are kept (shared by every server process).
        owner: who asks (a principal's username); keys of different owners never meet.
        endpoint: what is asked (e.g. 'POST /collections/events/items').
        key: the client's Idempotency-Key.
        fingerprint: request_hash() of the request; a retry must bring the same one.
        action: does the work through `store` (joining the transaction) and returns a JSON-serialisable
            response to keep and replay.

    Returns:
        The response and True when it is a replay of an earlier request's response.

    Raises:
        KeyReused: the key was used for a different request.
        Conflict: the first request with this key is still running after `wait_seconds`.
    """
    record = IdempotencyRecord(owner, endpoint, key, fingerprint)
    deadline = time.monotonic() + wait_seconds
    while True:
        with store.transaction(actor=owner):
            held = store.claim_idempotency_key(record, lease_seconds)
            if held is None:
                response = action()
                store.finish_idempotency_key(owner, endpoint, key, response)
                return response, False
        if held.request_hash != fingerprint:
            raise KeyReused(f"{HEADER} {key!r} was already used for a different request", parameter=HEADER)
        if held.response is not None:
            return held.response, True
        # A claim without a response (left by an older release that claimed in its own transaction).
        if time.monotonic() >= deadline:
            raise Conflict(f"a request with {HEADER} {key!r} is still in progress; retry later", parameter=HEADER)
        time.sleep(POLL_SECONDS)
