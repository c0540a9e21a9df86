"""`onemap user …`: accounts and API keys from the command line (a county's first admin starts here).

The same rules as `/users` and `/api-keys` (geoserver/accounts.py); running servers hear each change through
the change log.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from api.settings import Settings
from geoserver.accounts import ACCOUNT_ROLES, AccountAdmin, grants_of
from geoserver.errors import BadInput
from geoserver.store import open_store
from layers.catalog import build_catalog


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `onemap user` and its actions."""
    p = sub.add_parser("user", help="create, change, disable accounts; issue and revoke API keys")
    p.add_argument("--database", help="postgresql:// URL or a .gpkg path (default: ONEMAP_DATABASE or the sample)")
    actions = p.add_subparsers(dest="action", required=True)

    a = actions.add_parser("add", help="create an account (asks for its password)")
    a.add_argument("username")
    a.add_argument("--role", required=True, choices=ACCOUNT_ROLES)
    _account_options(a)
    _password_option(a)

    a = actions.add_parser("grant", help="change an account's role, townships, grids, department or grants")
    a.add_argument("username")
    a.add_argument("--role", choices=ACCOUNT_ROLES)
    _account_options(a)
    a.add_argument("--no-grants", action="store_true", help="drop every extra grant")

    for name, text in (("disable", "disable an account: its tokens and API keys stop working"),
                       ("enable", "enable a disabled account again (it logs in afresh)")):
        actions.add_parser(name, help=text).add_argument("username")

    a = actions.add_parser("passwd", help="set an account's password (asks for it)")
    a.add_argument("username")
    _password_option(a)

    a = actions.add_parser("list", help="list accounts")
    a.add_argument("--role", choices=ACCOUNT_ROLES)
    a.add_argument("--township")

    a = actions.add_parser("key", help="API keys")
    keys = a.add_subparsers(dest="key_action", required=True)
    k = keys.add_parser("issue", help="issue an API key for an account (printed once)")
    k.add_argument("username")
    k.add_argument("--label", default="")
    keys.add_parser("revoke", help="revoke an API key by its id").add_argument("key_id")
    keys.add_parser("list", help="list API keys (never their secrets)").add_argument("username", nargs="?")


def _account_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--townships", help="township codes, comma-separated ('' for none)")
    p.add_argument("--grids", help="grid codes, comma-separated ('' for none)")
    p.add_argument("--department", help="the department of a department account")
    p.add_argument("--display-name")
    p.add_argument("--grant", action="append", metavar="LAYER:ACTION[:TOWNSHIPS]",
                   help="an extra grant, e.g. grids:read:* or temples:read:630001,630002 (repeatable)")


def _password_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def cmd_user(args: argparse.Namespace) -> int:
    """Run one `onemap user` action."""
    settings = Settings.from_env(database=args.database)
    catalog = build_catalog()
    actor = f"cli:{getpass.getuser()}"
    with open_store(settings.database, catalog) as store:
        admin = AccountAdmin(store, catalog)
        action = args.action
        if action == "add":
            user = admin.create(args.username, _password(args), actor=actor, role=args.role, **_fields(args))
            print(f"created account {user.username!r} ({user.role})")
        elif action == "grant":
            fields = _fields(args)
            if args.role:
                fields["role"] = args.role
            if args.no_grants:
                fields["grants"] = []
            user = admin.change(args.username, actor=actor, **fields)
            print(_line(user))
        elif action in ("disable", "enable"):
            user = admin.change(args.username, actor=actor, disabled=action == "disable")
            print(f"{action}d account {user.username!r}")
        elif action == "passwd":
            admin.change(args.username, actor=actor, password=_password(args))
            print(f"password of {args.username!r} changed; its tokens no longer work")
        elif action == "list":
            users, total = admin.list(role=args.role, township=args.township, limit=1_000_000)
            for user in users:
                print(_line(user))
            print(f"{total} account(s)")
        else:
            return _keys(admin, args, actor)
    return 0


def _keys(admin: AccountAdmin, args: argparse.Namespace, actor: str) -> int:
    if args.key_action == "issue":
        key, record = admin.issue_key(args.username, args.label, actor=actor)
        print(f"API key {record.key_id} for {record.username!r}; it is shown only now, keep it safe:")
        print(key)
    elif args.key_action == "revoke":
        record = admin.revoke_key(args.key_id, actor=actor)
        print(f"revoked API key {record.key_id} of {record.username!r}")
    else:
        for record in admin.keys(args.username):
            created = record.created_at.isoformat() if record.created_at else ""
            print(f"{record.key_id}  {record.username}  {created}  {record.label}")
    return 0


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The account fields given on the command line."""
    fields: dict[str, Any] = {}
    for name in ("townships", "grids"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = [c.strip() for c in value.split(",") if c.strip()]
    if args.department is not None:
        fields["department"] = args.department or None
    if args.display_name is not None:
        fields["display_name"] = args.display_name
    if args.grant:
        fields["grants"] = [_grant(text) for text in args.grant]
    return fields


def _grant(text: str) -> list[Any]:
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise BadInput(f"--grant {text!r}: expected LAYER:ACTION[:TOWNSHIPS]", parameter="grants")
    if len(parts) == 2:
        return parts
    towns = parts[2]
    return [parts[0], parts[1], towns if towns in ("*", "own") else [t for t in towns.split(",") if t]]


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input, or typed twice at a terminal."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise BadInput("no terminal to ask for the password: pass --password-stdin and pipe it in",
                       parameter="password")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise BadInput("the two passwords differ", parameter="password")
    return first


def _line(user) -> str:
    grants = " ".join(":".join(str(p) if isinstance(p, str) else ",".join(p) for p in g.to_json())
                      for g in grants_of(user))
    state = " DISABLED" if user.disabled else ""
    return (f"{user.username}  {user.role}  townships={','.join(user.townships) or '-'}  "
            f"grids={','.join(user.grids) or '-'}  department={user.department or '-'}"
            f"{'  grants=' + grants if grants else ''}{state}")
