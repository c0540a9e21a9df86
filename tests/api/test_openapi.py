"""The OpenAPI document is ours: every route we serve and nothing else, our media types, no remote $ref.

(Schemathesis checks every listed operation's answers against it: tests/api/test_openapi_schemathesis.py.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import jsonschema
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_30

from api.app import create_app
from api.auth import get_principal
from api.openapi.document import MOVING_OPERATIONS, api_routes
from api.openapi.ogc import FEATURE_ROUTES, OPERATIONS
from api.settings import Settings
from geoserver.access import Principal
from tests.api.conftest import SECRET, login

OAS = "application/vnd.oai.openapi+json;version=3.0"
PROBLEM = "application/problem+json"
PROTECTED = ("grids", "buildings", "temples", "monitoring_sites", "events", "patrols", "track_points", "readings",
             "alarms")


def _doc(client: TestClient, headers: dict | None = None) -> dict:
    r = client.get("/openapi", headers=headers or {})
    assert r.status_code == 200 and r.headers["content-type"] == OAS
    return r.json()


def _operations(doc: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def _refs(node) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


@pytest.fixture(scope="module")
def operator(client) -> dict:
    return login(client, "operator")


def test_the_document_is_valid_openapi_30_with_only_local_refs(client, operator):
    for doc in (_doc(client), _doc(client, operator)):
        assert doc["openapi"].startswith("3.0.")
        errors = sorted(jsonschema.Draft4Validator(OPENAPI_30).iter_errors(doc), key=str)
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
        refs = set(_refs(doc))
        assert refs and all(r.startswith("#/components/schemas/") for r in refs)
        assert {r.rsplit("/", 1)[1] for r in refs} <= set(doc["components"]["schemas"])


def test_every_route_we_serve_is_listed_and_nothing_else(client, operator):
    doc = _doc(client, operator)
    listed = {(m, p) for m, p, _ in _operations(doc)}
    served = {(m, p) for p, r in api_routes(client.app) if r.include_in_schema for m in r.methods}
    # The generic Features routes are listed once per collection, with the OGC parameter name.
    generic = {(m, p if (m, p) in served else re.sub(
        r"^/collections/\w+(/items/\{featureId\})?", lambda x: "/collections/{collection_id}"
        + ("/items/{fid}" if x.group(1) else ""), p)) for m, p in listed}
    assert generic == served
    for must in [("PATCH", "/collections/events/items/{featureId}"), ("POST", "/auth/token"),
                 ("GET", "/tiles/{tms}/{z}/{row}/{col}"), ("GET", "/3dtiles/buildings/tileset.json"),
                 ("GET", "/wmts/1.0.0/WMTSCapabilities.xml"), ("GET", "/collections/{source}/map/tiles/{tms}/{z}/{row}/{col}"),
                 ("GET", "/collections/{collection}/tiles/{tms}/{z}/{row}/{col}")]:
        assert must in listed
    assert not {p for _, p in listed if p.startswith("/jobs") or p.endswith("/schema")}
    assert "OPTIONS" not in {m for m, _ in listed}


def test_media_types_are_the_ones_we_send(client, operator):
    doc = _doc(client, operator)
    paths = doc["paths"]

    def ok(path: str, method: str = "get", status: str = "200") -> set[str]:
        return set(paths[path][method]["responses"][status]["content"])

    assert ok("/collections/events/queryables") == {"application/schema+json", "text/html"}
    assert ok("/collections/events/items") == {"application/geo+json", "text/html"}
    assert ok("/collections/events/items", "post", "201") == {"application/geo+json"}
    assert "413" in paths["/collections/events/items"]["post"]["responses"]  # the body size limit
    assert ok("/tiles/{tms}/{z}/{row}/{col}") == {"application/vnd.mapbox-vector-tile"}
    assert ok("/collections/{source}/map/tiles/{tms}/{z}/{row}/{col}") == {"image/png", "image/jpeg", "image/webp"}
    assert ok("/3dtiles/buildings/{tile_path}.glb") == {"model/gltf-binary"}
    assert ok("/wmts/1.0.0/WMTSCapabilities.xml") == {"application/xml"}
    assert ok("/openapi") == {OAS, "text/html"}
    for method, path, op in _operations(doc):
        errors = {s: r for s, r in op["responses"].items() if s >= "400"}
        assert "422" not in errors or "HTTPValidationError" not in str(errors["422"]), (method, path)
        for status, r in errors.items():  # a browser asking for a page gets 400, 403 and 404 as HTML
            assert set(r["content"]) == ({PROBLEM, "text/html"} if status in ("400", "403", "404") else {PROBLEM})


def test_the_served_answers_carry_the_documented_media_types(client, operator):
    r = client.get("/collections/events/queryables", headers=operator)
    assert r.headers["content-type"] == "application/schema+json"
    r = client.get("/collections/events/items?limit=1", headers=operator)
    assert r.headers["content-type"] == "application/geo+json"
    r = client.get("/collections/nope/items")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_anonymous_callers_never_learn_a_protected_collection(client, operator):
    anonymous = _doc(client)
    text = str(anonymous)
    assert not [c for c in PROTECTED if f"/collections/{c}" in text or f"'{c}.Feature'" in text]
    assert {t["name"] for t in anonymous["tags"]} == {"townships", "villages", "pois"}
    assert not [p for m, p, _ in _operations(anonymous) if m != "GET" and p.startswith("/collections/")]
    # /collections agrees with the document: the same ids
    listed = {c["id"] for c in client.get("/collections").json()["collections"]}
    assert {t["name"] for t in anonymous["tags"]} == listed
    collection_enum = anonymous["paths"]["/collections/{collection}/tiles"]["get"]["parameters"][0]["schema"]["enum"]
    assert set(collection_enum) == listed
    assert "/3dtiles/buildings/tileset.json" not in anonymous["paths"]  # buildings are not public
    assert set(_doc(client, operator)["paths"]["/collections/{collection}/tiles"]["get"]["parameters"][0]
               ["schema"]["enum"]) >= set(PROTECTED)


def test_write_operations_are_listed_for_those_who_may_use_them(client, operator):
    def methods(doc: dict, path: str) -> set[str]:
        return set(doc["paths"].get(path, {}))

    item = "/collections/events/items/{featureId}"
    assert methods(_doc(client, operator), item) == {"get", "put", "patch", "delete"}
    leader = _doc(client, login(client, "leader-A"))  # leaders create and update, they do not delete
    assert methods(leader, item) == {"get", "put", "patch"}
    assert methods(leader, "/collections/events/items") == {"get", "post"}
    assert methods(leader, "/collections/townships/items") == {"get"}


def test_swagger_ui_is_served_by_us(client):
    for path in ("/docs", "/openapi?f=html"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", r.text) + re.findall(r"url: '([^']+)'", r.text)
        assert urls and all(u.startswith("http://testserver/") for u in urls), urls
        for url in urls:
            assert client.get(url.removeprefix("http://testserver")).status_code == 200, url
    assert client.get("/openapi", headers={"Accept": "text/html"}).headers["content-type"].startswith("text/html")
    assert client.get("/api").json()["paths"] == client.get("/openapi?f=json").json()["paths"]
    r = client.get("/openapi?f=xml")
    assert r.status_code == 400 and r.json()["parameter"] == "f"


def test_the_ogc_layer_names_only_routes_that_exist(client):
    served = {(m, p) for p, r in api_routes(client.app) for m in r.methods}
    assert set(OPERATIONS) - served == set()
    assert set(MOVING_OPERATIONS) - served == set()
    assert set(FEATURE_ROUTES) - served == set()


def test_a_route_added_anywhere_appears_with_problem_errors(county_db):
    app = create_app(Settings(database=county_db, secret=SECRET))
    extra = APIRouter()

    @extra.get("/ping/{name}")
    def ping(name: str, n: int = 1) -> dict:
        """Answer a ping."""
        return {"pong": name * n}

    @extra.post("/pong")
    async def pong(request: Request, principal: Principal = Depends(get_principal)) -> dict:
        """Read a body the route parses itself."""
        return await request.json()

    @extra.get("/internal", include_in_schema=False)
    def internal() -> dict:
        return {}

    app.include_router(extra)
    with TestClient(app) as c:
        doc = _doc(c)
    op = doc["paths"]["/ping/{name}"]["get"]
    assert op["summary"] == "Ping" and op["description"] == "Answer a ping."
    assert {"200", "400", "404"} <= set(op["responses"]) and "422" not in op["responses"]
    assert PROBLEM in op["responses"]["400"]["content"]
    # a route that reads its own body and checks roles may refuse either, whatever FastAPI saw
    assert {"400", "401", "403", "413"} <= set(doc["paths"]["/pong"]["post"]["responses"])
    assert "/internal" not in doc["paths"]
