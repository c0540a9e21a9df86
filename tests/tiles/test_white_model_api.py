"""The white model over HTTP on both stores: scope per caller, content, caching validators, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import STORE_KINDS, filled_database
from tests.tiles import white_model_county as county
from tests.tiles.tileset_rules import check_tileset, property_table, read_glb

SECRET = "test-secret-of-at-least-thirty-two-bytes"


@pytest.fixture(scope="module", params=STORE_KINDS)
def client(request, catalog, tmp_path_factory, fresh_postgis_url) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp(f"white-{request.param}")
    db = filled_database(request.param, catalog, tmp, fresh_postgis_url, county.fill)
    with TestClient(create_app(Settings(database=db, secret=SECRET, sample_dir=tmp))) as c:
        yield c


def login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/auth/token", data={"username": username, "password": county.PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def fetch_model(client: TestClient, headers: dict) -> tuple[dict, dict[str, bytes]]:
    r = client.get("/3dtiles/buildings/tileset.json", headers=headers)
    assert r.status_code == 200, r.text
    tileset, contents = r.json(), {}

    def walk(tile):
        if "content" in tile:
            c = client.get(f"/3dtiles/buildings/{tile['content']['uri']}", headers=headers)
            assert c.status_code == 200 and c.headers["content-type"] == "model/gltf-binary"
            contents[tile["content"]["uri"]] = c.content
        for child in tile.get("children", []):
            walk(child)

    walk(tileset["root"])
    return tileset, contents


def townships_in(contents: dict[str, bytes]) -> list[str]:
    out = []
    for glb in contents.values():
        out += property_table(*read_glb(glb))["township_code"]
    return out


def test_admin_sees_every_building_in_a_valid_tileset(client):
    tileset, contents = fetch_model(client, login(client, "admin"))
    assert check_tileset(tileset, contents) == []
    found = townships_in(contents)
    assert len(found) == len(county.footprints())
    assert set(found) == {"A", "B"}


def test_a_township_leader_gets_only_their_townships_buildings(client):
    tileset, contents = fetch_model(client, login(client, "leader-A"))
    found = townships_in(contents)
    assert found and set(found) == {"A"}
    assert len(found) == sum(1 for _, p in county.footprints() if p["township_code"] == "A")
    admin, _ = fetch_model(client, login(client, "admin"))
    assert tileset["root"]["boundingVolume"] != admin["root"]["boundingVolume"]


def test_anonymous_callers_have_no_white_model(client):
    r = client.get("/3dtiles/buildings/tileset.json")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_unknown_content_is_not_found(client):
    r = client.get("/3dtiles/buildings/0-9-9-9.glb", headers=login(client, "admin"))
    assert r.status_code == 404 and r.json()["parameter"] == "tile_path"


def test_tileset_revalidates_with_its_etag_and_is_private(client):
    headers = login(client, "admin")
    first = client.get("/3dtiles/buildings/tileset.json", headers=headers)
    assert first.headers["cache-control"].startswith("private")
    again = client.get("/3dtiles/buildings/tileset.json", headers={**headers, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/3dtiles/buildings/tileset.json", None])
def test_if_none_match_star_is_honoured_as_on_vector_tiles(client, path):
    headers = login(client, "admin")
    if path is None:  # a content tile
        _, contents = fetch_model(client, headers)
        path = "/3dtiles/buildings/" + next(iter(contents))
    r = client.get(path, headers={**headers, "If-None-Match": "*"})
    assert r.status_code == 304 and r.content == b""
    assert client.get(path, headers={**headers, "If-None-Match": '"other"'}).status_code == 200


def test_2d_and_3d_agree_on_the_height_property(client, catalog):
    style = catalog.get("buildings").style
    _, contents = fetch_model(client, login(client, "admin"))
    table = property_table(*read_glb(next(iter(contents.values()))))
    assert style.height_property == "height" and "height" in table


def test_the_tileset_refers_to_its_content_relatively_so_no_host_header_reaches_it(client):
    r = client.get("/3dtiles/buildings/tileset.json", headers={**login(client, "admin"), "Host": "evil.example"})
    uris = []

    def walk(tile):
        uris.extend([tile["content"]["uri"]] if "content" in tile else [])
        for child in tile.get("children", []):
            walk(child)

    walk(r.json()["root"])
    assert uris and all(u.endswith(".glb") and "://" not in u for u in uris)
    assert "evil.example" not in r.text
