"""Account administration: create, re-grant, disable and re-enable accounts, set passwords, issue and revoke
API keys. The one home of these rules: `/users`, `/api-keys` and `onemap user` all call it.

Every change bumps the account's auth_version in the store, which retires its tokens in every process
(geoserver/account_states.py). Passwords are kept only as scrypt hashes, API keys only as SHA-256 hashes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from geoserver.access import ALL, OWN, ROLES, Grant, Scope
from geoserver.apikeys import hash_api_key, new_api_key
from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Catalog
from geoserver.errors import BadInput, Conflict, NotFound, PreconditionFailed
from geoserver.features import MAX_LIMIT, FeatureQuery
from geoserver.passwords import hash_password
from geoserver.store import AccountState, ApiKeyRecord, Store, UserRecord

log = logging.getLogger("onemap.accounts")

ACCOUNT_ROLES = tuple(r for r in ROLES if r != "anonymous")
# Letters of any script, digits and . _ @ -; no colon (HTTP Basic splits on it), no spaces.
USERNAME = re.compile(r"[\w.@-]{1,64}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_TEXT = 200  # display names, labels
MAX_CODES = 1000  # townships or grids of one account
MAX_GRANTS = 100
NEEDS_TOWNSHIPS = ("leader", "worker", "department")  # roles that see nothing without a township
EDITABLE = ("role", "display_name", "townships", "grids", "department", "grants", "disabled")


def grants_of(user: UserRecord) -> list[Grant]:
    """The extra per-user grants an account carries."""
    return [Grant.parse(g) for g in user.extra.get("grants", ())]


class AccountAdmin:
    """Account administration over one store and catalog.

    `noted` hears every account as written (the process's AccountStates, so its own tokens follow at once).
    """

    def __init__(self, store: Store, catalog: Catalog,
                 noted: Callable[[str, AccountState], None] | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.noted = noted

    # -- accounts -----------------------------------------------------------------------------------------
    def get(self, username: str) -> UserRecord:
        """One account; NotFound if there is none."""
        user = self.store.get_user(username)
        if user is None:
            raise NotFound(f"no account {username!r}", parameter="username")
        return user

    def list(self, *, role: str | None = None, township: str | None = None, limit: int = 100,
             offset: int = 0) -> tuple[list[UserRecord], int]:
        """A page of accounts in name order and how many match."""
        if role is not None and role not in ACCOUNT_ROLES:
            raise BadInput(f"role must be one of {', '.join(ACCOUNT_ROLES)}", parameter="role")
        return self.store.list_users(role=role, township=township, limit=limit, offset=offset)

    def create(self, username: str, password: str, *, actor: str, role: str, **fields: Any) -> UserRecord:
        """A new account with a password (hashed here); BadInput naming the field, Conflict if the name is taken.

        Args:
            username: letters, digits, `.`, `_`, `@`, `-`, at most 64.
            password: 8 to 1024 characters.
            actor: who asks (for the log).
            role: one of ACCOUNT_ROLES.
            fields: display_name, townships, grids, department, grants (Grant or stored form), disabled.
        """
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            raise BadInput("username must be 1 to 64 letters, digits, '.', '_', '@' or '-'", parameter="username")
        _no_unknown(fields)
        user = self._checked(UserRecord(username, role, "", **_record_fields(fields)))
        user.password_hash = hash_password(_checked_password(password))
        stored = self.store.add_user(user)
        log.info("account %r (%s) created by %r", username, role, actor)
        return self._noted(stored)

    def change(self, username: str, *, actor: str, version: int | None = None, password: str | None = None,
               **fields: Any) -> UserRecord:
        """Re-grant, rename, disable or re-enable an account, or set its password; its tokens stop working.

        Args:
            username: the account.
            actor: who asks (for the log).
            version: the auth_version the caller last read (If-Match); PreconditionFailed-like Conflict if stale.
            password: a new password, or None to keep it.
            fields: any of EDITABLE; those not given keep their value.
        """
        current = self.get(username)
        if version is not None and version != current.auth_version:
            raise PreconditionFailed(f"the account {username!r} is at version {current.auth_version}, not {version}",
                                     parameter="If-Match")
        _no_unknown(fields)
        merged: dict[str, Any] = {**dataclasses.asdict(current), "grants": grants_of(current), **fields}
        record = _record_fields({k: merged[k] for k in EDITABLE if k != "role"})
        # Whatever else `extra` holds is kept; the grants in it are replaced.
        record["extra"] = {**{k: v for k, v in current.extra.items() if k != "grants"}, **record.get("extra", {})}
        new = self._checked(UserRecord(username, merged["role"], current.password_hash,
                                       auth_version=current.auth_version, **record))
        if password is not None:
            new.password_hash = hash_password(_checked_password(password))
        self._keep_an_admin(current, new)
        stored = self.store.update_user(new)
        what = sorted(fields) + (["password"] if password is not None else [])
        log.info("account %r changed by %r: %s", username, actor, ", ".join(what) or "nothing")
        if password is not None:
            self.store.clear_login_failures(f"user:{username}")  # a new password lifts a lock-out
        return self._noted(stored)

    # -- API keys -----------------------------------------------------------------------------------------
    def issue_key(self, username: str, label: str, *, actor: str) -> tuple[str, ApiKeyRecord]:
        """A new API key for an account: the key (shown once, never stored) and its record."""
        if not isinstance(label, str) or len(label) > MAX_TEXT:
            raise BadInput(f"label must be text of at most {MAX_TEXT} characters", parameter="label")
        self.get(username)
        key = new_api_key()
        record = ApiKeyRecord(hash_api_key(key), username, label)
        self.store.put_api_key(record)
        log.info("API key %s issued to %r by %r", record.key_id, username, actor)
        return key, self.key(record.key_id)

    def keys(self, username: str | None = None) -> list[ApiKeyRecord]:
        """Every API key (of one account), oldest first; NotFound for an unknown account."""
        if username is not None:
            self.get(username)
        return self.store.list_api_keys(username)

    def key(self, key_id: str) -> ApiKeyRecord:
        """One API key by id; NotFound if there is none."""
        for record in self.store.list_api_keys():
            if record.key_id == key_id:
                return record
        raise NotFound(f"no API key {key_id!r}", parameter="key_id")

    def revoke_key(self, key_id: str, *, actor: str) -> ApiKeyRecord:
        """Revoke an API key: it stops working at once, in every process."""
        record = self.store.delete_api_key(key_id)
        log.info("API key %s of %r revoked by %r", key_id, record.username, actor)
        return record

    # -- rules --------------------------------------------------------------------------------------------
    def _checked(self, user: UserRecord) -> UserRecord:
        """The account if its fields make sense together; BadInput naming the first that does not."""
        if user.role not in ACCOUNT_ROLES:
            raise BadInput(f"role must be one of {', '.join(ACCOUNT_ROLES)}", parameter="role")
        if not isinstance(user.display_name, str) or len(user.display_name) > MAX_TEXT:
            raise BadInput(f"display_name must be text of at most {MAX_TEXT} characters", parameter="display_name")
        if not isinstance(user.disabled, bool):
            raise BadInput("disabled must be true or false", parameter="disabled")
        townships = self._existing(TOWNSHIP_KEY, user.townships, "townships")
        if user.role in NEEDS_TOWNSHIPS and not townships:
            raise BadInput(f"a {user.role} account needs at least one township", parameter="townships")
        grid_towns = self._existing(GRID_KEY, user.grids, "grids")
        for grid, town in grid_towns.items():
            if town not in townships:
                raise BadInput(f"grid {grid!r} lies in township {town!r}, which the account does not hold",
                               parameter="grids")
        departments = {d for layer in self.catalog for d in layer.departments}
        if user.department is not None and user.department not in departments:
            raise BadInput(f"department must be one of {', '.join(sorted(departments))}", parameter="department")
        if user.role == "department" and user.department is None:
            raise BadInput("a department account needs its department", parameter="department")
        self._check_grants(grants_of(user))
        return user

    def _existing(self, key: str, codes: tuple[str, ...], field: str) -> dict[str, str | None]:
        """code -> its township, for codes that exist in the townships or grids layer; BadInput otherwise."""
        if len(codes) > MAX_CODES:
            raise BadInput(f"{field} may list at most {MAX_CODES} codes", parameter=field)
        if not all(isinstance(c, str) and 0 < len(c) <= 64 for c in codes) or len(set(codes)) != len(codes):
            raise BadInput(f"{field} must be distinct codes", parameter=field)
        layer_id = "townships" if key == TOWNSHIP_KEY else "grids"
        if not codes or layer_id not in self.catalog:
            return {c: None for c in codes}
        query = FeatureQuery(filter={"op": "in", "args": [{"property": key}, list(codes)]},
                             properties=tuple({key, TOWNSHIP_KEY}), with_geometry=False, limit=MAX_LIMIT)
        found = {f.properties[key]: f.properties.get(TOWNSHIP_KEY)
                 for f in self.store.query(layer_id, query, Scope.everything()).features}
        missing = [c for c in codes if c not in found]
        if missing:
            raise BadInput(f"no {layer_id[:-1]} {missing[0]!r}", parameter=field)
        return {c: found[c] for c in codes}

    def _check_grants(self, grants: list[Grant]) -> None:
        if len(grants) > MAX_GRANTS:
            raise BadInput(f"an account may carry at most {MAX_GRANTS} grants", parameter="grants")
        for grant in grants:
            if grant.layer != ALL and grant.layer not in self.catalog:
                raise BadInput(f"grant names no layer {grant.layer!r}", parameter="grants")
            if not isinstance(grant.townships, str):
                self._existing(TOWNSHIP_KEY, tuple(sorted(grant.townships)), "grants")

    def _keep_an_admin(self, current: UserRecord, new: UserRecord) -> None:
        """Conflict if the change would leave the county without an enabled admin."""
        if current.role != "admin" or current.disabled or (new.role == "admin" and not new.disabled):
            return
        admins, _ = self.store.list_users(role="admin", limit=MAX_CODES)
        if not any(a.username != current.username and not a.disabled for a in admins):
            field = "disabled" if new.disabled else "role"
            raise Conflict(f"{current.username!r} is the last enabled admin; make another admin first",
                           parameter=field)

    def _noted(self, user: UserRecord) -> UserRecord:
        if self.noted is not None:
            self.noted(user.username, AccountState(user.auth_version, user.disabled))
        return user


def _checked_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadInput(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", parameter="password")
    return password


def _record_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """UserRecord keyword arguments from admin fields (lists as tuples, grants into `extra`)."""
    out: dict[str, Any] = {}
    for name in ("display_name", "department", "disabled"):
        if name in fields:
            out[name] = fields[name]
    for name in ("townships", "grids"):
        if name in fields:
            out[name] = _codes(fields[name], name)
    if fields.get("grants"):
        if isinstance(fields["grants"], str | dict):
            raise BadInput("grants must be a list", parameter="grants")
        out["extra"] = {"grants": [_grant(g).to_json() for g in fields["grants"]]}
    return out


def _no_unknown(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise BadInput(f"unknown account field {unknown[0]!r}", parameter=unknown[0])


def _codes(values: Iterable[Any] | None, field: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        raise BadInput(f"{field} must be a list of codes", parameter=field)
    return tuple(values)


def _grant(value: Any) -> Grant:
    try:
        grant = Grant.parse(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadInput(f"bad grant ({exc}); a grant names a layer, an action and townships ('{ALL}', '{OWN}' "
                       "or a list)", parameter="grants") from None
    return grant
