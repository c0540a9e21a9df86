"""The records a Store reads and writes besides features: locations, extents, column arrays, GeoJSON pages,
accounts, API keys, login counters, idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Location:
    """Where a point falls: its township and grid (None outside every one)."""

    township_code: str | None
    grid_code: str | None


@dataclass(frozen=True)
class Durations:
    """Hours between two times of the features a query matched: how many had both, the requested quantiles
    (linear interpolation, as PostgreSQL's percentile_cont; None when there are none), how many ended in time."""

    count: int
    quantiles: dict[float, float | None]
    in_time: int


@dataclass(frozen=True)
class Extent:
    """The spatial (lon/lat) and temporal extent of the features a scope sees in a layer."""

    bbox: tuple[float, float, float, float] | None
    interval: tuple[datetime | None, datetime | None] | None
    count: int


@dataclass
class Columns:
    """Point features read column by column (many rows, no Feature objects): ids, lon, lat and properties
    (a list each; datetimes as an array of epoch seconds)."""

    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    values: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class GeoJSONPage:
    """A page of features already encoded: `features` is the inside of a GeoJSON `features` array (the
    Feature objects joined by commas, UTF-8, no brackets), with how many it holds and how many matched."""

    features: bytes
    number_returned: int
    number_matched: int


@dataclass
class UserRecord:
    """A person or machine account (not a map feature): role, townships, grids, department.

    `auth_version` goes up on every change to the account; a token names the version it was issued under
    and stops working once the account has moved on (or is `disabled`).
    """

    username: str
    role: str
    password_hash: str
    display_name: str = ""
    townships: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()
    department: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    disabled: bool = False
    auth_version: int = 1


@dataclass(frozen=True)
class AccountState:
    """What decides whether an account's tokens still stand: its current auth_version and disabled flag."""

    version: int
    disabled: bool


@dataclass
class ApiKeyRecord:
    """An API key, stored only as its hash, bound to a user; `key_id` names it in lists and revocations."""

    key_hash: str
    username: str
    label: str = ""
    key_id: str = ""
    created_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # The id is the head of the hash: stable, unique enough (64 bits) and no secret (the hash is one-way).
        if not self.key_id:
            self.key_id = self.key_hash[:16]


@dataclass(frozen=True)
class LoginFailures:
    """Failed logins of one subject (an account or a client address) counted since `since`."""

    failures: int
    since: datetime


@dataclass
class IdempotencyRecord:
    """A request made once under an Idempotency-Key: who, where, which key, the request's hash and, once it
    has finished, the response every retry gets (None while the first request is still running)."""

    owner: str
    endpoint: str
    key: str
    request_hash: str
    response: dict[str, Any] | None = None
    created_at: datetime | None = None
