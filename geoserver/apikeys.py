"""API keys: how a key is made and how it is stored (only its SHA-256 hash is ever kept)."""

from __future__ import annotations

import hashlib
import secrets

from geoserver.store.base import ApiKeyRecord

KEY_PREFIX = "om_"


def hash_api_key(key: str) -> str:
    """The stored form of an API key: the hex SHA-256 of its text."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """A fresh random API key (shown once to its owner, then kept only as a hash)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def sample_api_key(username: str) -> str:
    """The documented, deterministic key of a sample-county account (never use in a real deployment)."""
    return f"{KEY_PREFIX}sample_{username}"


# The sample county's external platform reads two protected layers everywhere (a per-user grant).
SAMPLE_EXTERNAL_GRANTS = [["grids", "read", "*"], ["buildings", "read", "*"]]


def sample_api_keys(usernames: list[str]) -> list[ApiKeyRecord]:
    """The documented API keys of the sample county: one for `external` and one for the first leader."""
    leaders = sorted(u for u in usernames if u.startswith("leader-"))
    chosen = [u for u in ("external",) if u in usernames] + leaders[:1]
    return [ApiKeyRecord(hash_api_key(sample_api_key(u)), u, "sample county key") for u in chosen]
