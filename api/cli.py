"""The `onemap` command: serve, sample, db upgrade, load, export, user."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api import cli_users
from api.settings import Settings
from geoserver.access import Scope
from geoserver.errors import OneMapError
from geoserver.store import open_store
from layers import alarm_rules
from layers.catalog import build_catalog
from layers.event_types import seed_defaults


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `onemap` command."""
    parser = argparse.ArgumentParser(prog="onemap", description="The one-map server for county governance.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the map server over HTTP")
    p.add_argument("--database", help="postgresql:// URL or a .gpkg path (default: ONEMAP_DATABASE or the sample)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1,
                   help="server processes (they share the store; live changes cross through its change log)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false",
                   help="no line per request on stdout (behind a proxy that logs them; ~7%% of a tile's cost)")
    p.add_argument("--http", choices=("fast", "h11"), default="fast",
                   help="fast: uvloop's event loop and the httptools parser (the default); h11: asyncio and h11, "
                        "the pure-Python pair")

    p = sub.add_parser("sample", help="generate the deterministic sample county")
    p.add_argument("--out", type=Path, default=Path("data/sample"))
    p.add_argument("--scale", choices=("small", "default", "large"), default="default")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--load", help="also load it into this postgresql:// database")
    p.add_argument("--if-missing", action="store_true", help="do nothing when it was already generated")

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=("upgrade",))
    p.add_argument("--database", required=False)

    p = sub.add_parser("load", help="load a GeoJSON / GeoPackage / Shapefile / CSV file into a layer")
    p.add_argument("file", type=Path)
    p.add_argument("--layer", required=True)
    p.add_argument("--database")
    p.add_argument("--crs", help="the file's CRS when it declares none (CSV: default EPSG:4326)")
    p.add_argument("--replace", action="store_true", help="empty the layer first")

    p = sub.add_parser("export", help="export a layer to a file")
    p.add_argument("--layer", required=True)
    p.add_argument("--format", choices=("gpkg", "geojson", "csv"), default="gpkg")
    p.add_argument("--out", type=Path)
    p.add_argument("--database")

    cli_users.add_parser(sub)

    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except OneMapError as exc:
        print(f"onemap {args.command}: {exc.message}", file=sys.stderr)
        return 2


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(database=getattr(args, "database", None))


def cmd_serve(args: argparse.Namespace) -> int:
    """Run uvicorn with the app factory; with --workers N, N processes on one port sharing the database."""
    import os
    import secrets
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.app import create_app

    settings = Settings.from_env(database=args.database, listen=f"{args.host}:{args.port}")
    if args.workers < 1:
        print("onemap serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers == 1:
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info",
                    access_log=args.access_log, **_protocol(args.http))
        return 0
    # Each worker process builds its app from the environment: give them all the same database and the
    # same token secret (a token issued by one worker must be good on every other).
    os.environ["ONEMAP_DATABASE"] = settings.database
    os.environ["ONEMAP_LISTEN"] = settings.listen
    os.environ.setdefault("ONEMAP_SECRET", secrets.token_urlsafe(32))
    config = uvicorn.Config("api.app:create_app_from_env", factory=True, host=args.host, port=args.port,
                            workers=args.workers, log_level="info", access_log=args.access_log,
                            **_protocol(args.http))
    sock = config.bind_socket()
    # uvicorn opens the shared socket with protocol 0, so asyncio does not take it for TCP and leaves Nagle's
    # algorithm on for every connection the workers accept: a response written as headers, then body, waited
    # ~40 ms for the client's delayed ACK (20 tiles/s a connection instead of thousands). Linux hands the
    # listening socket's TCP_NODELAY to each accepted connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _protocol(choice: str) -> dict[str, str]:
    """uvicorn's event loop and HTTP parser for `--http`."""
    return {"loop": "uvloop", "http": "httptools"} if choice == "fast" else {"loop": "asyncio", "http": "h11"}


def cmd_sample(args: argparse.Namespace) -> int:
    """Generate the sample county (skipped with --if-missing when already there)."""
    from sample_data.generate import generate, is_generated

    if args.if_missing and is_generated(args.out, args.scale, args.seed, load=args.load):
        print(f"sample county already in {args.out}")
        return 0
    manifest = generate(args.out, scale=args.scale, seed=args.seed, load=args.load)
    print(json.dumps(manifest, indent=2, default=str))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Apply the schema migrations."""
    settings = _settings(args)
    with open_store(settings.database, build_catalog()) as store:
        store.initialize()
        seeded = seed_defaults(store)
        rules = alarm_rules.seed_defaults(store)  # after the event types: a rule may name one
        print(json.dumps({**store.health(), "event_types_added": seeded, "alarm_rules_added": rules}, default=str))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    """Load a file into a layer, all or nothing."""
    from geoserver.fileio import load_file

    settings = _settings(args)
    catalog = build_catalog()
    layer = catalog.get(args.layer)
    with open_store(settings.database, catalog) as store:
        count, ignored = load_file(store, layer, args.file, crs=args.crs, replace=args.replace)
    print(f"loaded {count} features into {layer.id}")
    if ignored:
        print(f"ignored columns not declared by {layer.id}: {', '.join(ignored)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a layer to a file."""
    from geoserver.fileio import export_layer

    settings = _settings(args)
    catalog = build_catalog()
    layer = catalog.get(args.layer)
    out = args.out or Path(f"{layer.id}.{args.format}")
    with open_store(settings.database, catalog) as store:
        count = export_layer(store, layer, out, args.format, Scope.everything())
    print(f"exported {count} features of {layer.id} to {out}")
    return 0


COMMANDS = {"serve": cmd_serve, "sample": cmd_sample, "db": cmd_db, "load": cmd_load, "export": cmd_export,
            "user": cli_users.cmd_user}

if __name__ == "__main__":
    sys.exit(main())
