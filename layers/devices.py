"""Phones of grid workers (设备): registered by their owner (admins manage all), each with a secret token for
tracker apps that can only put it in the URL (OsmAnd, Traccar Client, OwnTracks).

The token is shown once, at registration; the store keeps only its SHA-256 hash. A device belongs to one
account; its fixes become that account's patrol track.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from geoserver.access import Principal
from geoserver.catalog import Property, Table
from geoserver.errors import BadInput, Conflict, Forbidden, NotFound, Unauthorized
from geoserver.store import Store

DEVICES = Table(
    id="devices",
    title="Devices",
    description="Phones that send GPS fixes: the app's device id, its owner and the hash of its URL token.",
    columns=(
        Property("device_id", "string", "Device id as the tracker app sends it", required=True),
        Property("name", "string", "Name"),
        Property("username", "string", "Owner (account)", required=True),
        Property("token_hash", "string", "SHA-256 of the URL token", required=True),
        Property("created_at", "datetime", "Registered at", required=True),
        Property("last_seen_at", "datetime", "Last fix received at"),
    ),
)
TABLES = (DEVICES,)
MAX_ID = 100
MAX_NAME = 200
TOKEN_PREFIX = "dev_"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A device as answers show it (never its token hash)."""
    return {k: row.get(k) for k in ("id", "device_id", "name", "username", "created_at", "last_seen_at")}


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # tracker apps often use a number (an IMEI) as the id
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise BadInput(f"{name} must be a text of 1 to {limit} printable characters", parameter=name)
    return value.strip()


def register(store: Store, principal: Principal, body: Any) -> dict[str, Any]:
    """Register a phone: `{"device_id", "name"?}` for the caller, or for `username` (admins only). Returns the
    device with its token (shown this once); 409 if the device id is registered already."""
    if principal.is_anonymous:
        raise Unauthorized("log in to register a device", parameter="Authorization")
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object", parameter="body")
    device_id = _text(body, "device_id", MAX_ID, required=True)
    name = _text(body, "name", MAX_NAME, required=False)
    owner = _text(body, "username", MAX_NAME, required=False) or principal.username
    if owner != principal.username:
        if principal.role != "admin":
            raise Forbidden("only an admin registers a device for another account", parameter="username")
        if store.get_user(owner) is None:
            raise BadInput(f"username: no account {owner!r}", parameter="username")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    with store.transaction(actor=principal.username):
        if store.rows(DEVICES.id, {"device_id": device_id}, limit=1):
            raise Conflict(f"device {device_id!r} is registered already (delete it first)", parameter="device_id")
        row = store.add_row(DEVICES.id, {"device_id": device_id, "name": name, "username": owner,
                                         "token_hash": _token_hash(token), "created_at": datetime.now(UTC)})
    return {**public(row), "token": token}


def listing(store: Store, principal: Principal) -> list[dict[str, Any]]:
    """The caller's devices (an admin's: every device), in registration order."""
    if principal.is_anonymous:
        raise Unauthorized("log in to list devices", parameter="Authorization")
    where = None if principal.role == "admin" else {"username": principal.username}
    return [public(r) for r in store.rows(DEVICES.id, where, order_by=("id",), limit=10_000)]


def remove(store: Store, principal: Principal, device: int) -> None:
    """Delete a device (its token stops at once): the owner or an admin; 404 for no such device."""
    if principal.is_anonymous:
        raise Unauthorized("log in to delete a device", parameter="Authorization")
    with store.transaction(actor=principal.username):
        rows = store.rows(DEVICES.id, {"id": device}, limit=1, for_update=True)
        if not rows:
            raise NotFound(f"no device {device}", parameter="deviceId")
        if rows[0]["username"] != principal.username and principal.role != "admin":
            raise Forbidden(f"device {device} is another account's: only its owner (or an admin) deletes it",
                            parameter="deviceId")
        store.delete_rows(DEVICES.id, {"id": device})


def by_token(store: Store, token: str) -> dict[str, Any]:
    """The device a URL token names; Unauthorized (naming `token`) for an unknown one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise Unauthorized("unknown device token", parameter="token")
    rows = store.rows(DEVICES.id, {"token_hash": _token_hash(token)}, limit=1)
    if not rows:
        raise Unauthorized("unknown device token", parameter="token")
    return rows[0]


def of_owner(store: Store, principal: Principal, device_id: str | None, parameter: str) -> dict[str, Any]:
    """The registered device `device_id` of the caller (logged in with his own credentials): 404 when no such
    device is registered, 403 when it is another account's."""
    if device_id is None:
        raise BadInput(f"{parameter} is required: the device id registered at POST /devices", parameter=parameter)
    rows = store.rows(DEVICES.id, {"device_id": device_id}, limit=1)
    if not rows:
        raise NotFound(f"device {device_id!r} is not registered (POST /devices)", parameter=parameter)
    if rows[0]["username"] != principal.username:
        raise Forbidden(f"device {device_id!r} is another account's", parameter=parameter)
    return rows[0]
