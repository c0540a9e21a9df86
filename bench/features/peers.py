"""The servers of the features benchmark, each started as its own process on 127.0.0.1 over one PostGIS.

onemap runs from the project venv; pygeoapi (its own PostgreSQL provider) and tipg from bench/.venv-peers;
MapServer 8 is Debian's `mapserv` CGI behind Python's threading CGI server (one fork per request, which is
how Debian packages it without a FastCGI front end).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
PEERS_VENV = ROOT / "bench" / ".venv-peers" / "bin"


@dataclass
class Server:
    """One running server: where its events items are, what query it understands, its process."""

    name: str
    items: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    note: str = ""
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Stop the server's process (ours, by its handle)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _wait(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def _pg(database: str) -> dict[str, str]:
    u = urlsplit(database)
    return {"host": u.hostname or "127.0.0.1", "port": str(u.port or 5432), "dbname": u.path.lstrip("/"),
            "user": u.username or "postgres", "password": u.password or ""}


def start_onemap(database: str, port: int, workdir: Path, bbox: str, text_filter: str) -> Server:
    """onemap's own server (uvicorn, one process) on the PostGIS store; the admin's token for events."""
    env = {**os.environ, "ONEMAP_SECRET": "bench-secret-of-at-least-thirty-two-bytes",
           "ONEMAP_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--database", database, "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=(workdir / "onemap.log").open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(f"{base}/healthz", proc)
    token = httpx.post(f"{base}/auth/token", data={"username": "admin", "password": "onemap"}).json()
    return Server("onemap", f"{base}/collections/events/items",
                  {"bbox": bbox, "filter": text_filter, "limit": "1000"},
                  {"Authorization": f"Bearer {token['access_token']}"}, process=proc)


PYGEOAPI_CONFIG = """server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 10, max_items: 1000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: bench, description: bench, keywords: [bench], keywords_type: theme,
                    terms_of_service: none, url: 'http://127.0.0.1'}}
  license: {{name: none, url: 'http://127.0.0.1'}}
  provider: {{name: bench, url: 'http://127.0.0.1'}}
  contact: {{name: bench, position: bench, address: x, city: x, stateorprovince: x, postalcode: x,
            country: x, phone: x, fax: x, email: x, url: x, hours: x, instructions: x, role: pointOfContact}}
resources:
  events:
    type: collection
    title: events
    description: events
    keywords: [events]
    extents: {{spatial: {{bbox: [-180, -90, 180, 90], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {{host: {host}, port: {port_pg}, dbname: {dbname}, user: {user}, password: '{password}',
               search_path: [public]}}
        id_field: fid
        table: events
        geom_field: geom
"""


def start_pygeoapi(database: str, port: int, workdir: Path, bbox: str, ecql_filter: str) -> Server:
    """pygeoapi 0.21 standalone with its own PostgreSQL provider (its filter text is ECQL)."""
    pg = _pg(database)
    cfg, oas = workdir / "pygeoapi.yml", workdir / "pygeoapi-openapi.yml"
    cfg.write_text(PYGEOAPI_CONFIG.format(port=port, host=pg["host"], port_pg=pg["port"], dbname=pg["dbname"],
                                          user=pg["user"], password=pg["password"]))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(cfg), "PYGEOAPI_OPENAPI": str(oas)}
    subprocess.run([str(PEERS_VENV / "pygeoapi"), "openapi", "generate", str(cfg), "--output-file", str(oas)],
                   env=env, check=True, capture_output=True)
    proc = subprocess.Popen([str(PEERS_VENV / "uvicorn"), "pygeoapi.starlette_app:APP", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env, cwd=workdir,
                            stdout=(workdir / "pygeoapi.log").open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(f"{base}/collections/events", proc)
    return Server("pygeoapi 0.21 (PostgreSQL provider)", f"{base}/collections/events/items",
                  {"bbox": bbox, "filter": ecql_filter, "limit": "1000"}, process=proc)


def start_tipg(database: str, port: int, workdir: Path, bbox: str, text_filter: str) -> Server:
    """tipg (PyPI) over the same database, its collection `public.events`."""
    env = {**os.environ, "DATABASE_URL": database, "TIPG_MAX_FEATURES_PER_QUERY": "10000",
           "TIPG_DB_SCHEMAS": '["public"]'}
    proc = subprocess.Popen([str(PEERS_VENV / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port",
                             str(port), "--log-level", "warning"], env=env, cwd=workdir,
                            stdout=(workdir / "tipg.log").open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(f"{base}/collections", proc)
    return Server("tipg", f"{base}/collections/public.events/items",
                  {"bbox": bbox, "filter": text_filter, "filter-lang": "cql2-text", "limit": "1000"}, process=proc)


MAPFILE = """MAP
  NAME "events"
  EXTENT 73 18 135 54
  PROJECTION "init=epsg:4326" END
  WEB
    METADATA
      "oga_enable_request" "*"
      "oga_onlineresource" "http://127.0.0.1:{port}/cgi-bin/mapserv/events/ogcapi"
      "ows_title" "events"
      "ows_srs" "EPSG:4326"
      "oga_max_limit" "1000"
    END
  END
  LAYER
    NAME "events"
    TYPE POINT
    STATUS ON
    CONNECTIONTYPE POSTGIS
    CONNECTION "host={host} port={port_pg} dbname={dbname} user={user} password='{password}'"
    DATA "geom FROM events USING UNIQUE fid USING SRID=4326"
    PROJECTION "init=epsg:4326" END
    TEMPLATE "ogcapi"
    METADATA
      "ows_title" "events"
      "gml_featureid" "fid"
      "gml_include_items" "all"
      "gml_types" "auto"
      "ows_extent" "73 18 135 54"
    END
  END
END
"""


def start_mapserver(database: str, port: int, workdir: Path, bbox: str) -> Server:
    """Debian's MapServer 8 `mapserv` CGI (OGC API Features) reading PostGIS directly."""
    pg = _pg(database)
    (workdir / "events.map").write_text(MAPFILE.format(port=port, host=pg["host"], port_pg=pg["port"],
                                                       dbname=pg["dbname"], user=pg["user"],
                                                       password=pg["password"]))
    (workdir / "mapserver.conf").write_text(
        f'CONFIG\n  ENV\n    MS_MAP_PATTERN "."\n  END\n  MAPS\n    "events" "{workdir / "events.map"}"\n'
        "  END\nEND\n")
    # Python's CGI server drops to `nobody` when started as root: the mapfile must be readable by it.
    workdir.chmod(0o755)
    cgi = workdir / "cgi-bin"
    cgi.mkdir(exist_ok=True)
    link = cgi / "mapserv"
    if not link.exists():
        link.symlink_to("/usr/lib/cgi-bin/mapserv")
    env = {**os.environ, "MAPSERVER_CONFIG_FILE": str(workdir / "mapserver.conf")}
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--cgi", "--bind", "127.0.0.1", str(port)],
                            cwd=workdir, env=env, stdout=(workdir / "mapserver.log").open("w"),
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/cgi-bin/mapserv/events/ogcapi"
    _wait(f"{base}/collections/events?f=json", proc)
    return Server("MapServer 8.0 (CGI)", f"{base}/collections/events/items",
                  {"bbox": bbox, "limit": "1000", "f": "json"}, process=proc,
                  note="no attribute filter: MapServer's OGC API has no CQL2/property filters (bbox only)")
