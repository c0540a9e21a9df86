"""API keys: how a key is made and how it is stored (only its SHA-256 hash is ever kept)."""

from __future__ import annotations

import hashlib
import secrets

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
