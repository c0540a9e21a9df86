"""/viewer/profile (what the page shows each role) and /fonts (the label glyphs the style names)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import STORE_KINDS, postgis_url, sample_dir

LEADER_TOWN = "632626100"


@pytest.fixture(scope="module", params=STORE_KINDS)
def client(request) -> Iterator[TestClient]:
    db = str(sample_dir() / "county.gpkg") if request.param == "embedded" else postgis_url()
    with TestClient(create_app(Settings(database=db, sample_dir=sample_dir(), jobs=False))) as c:
        yield c


def _profile(client: TestClient, username: str | None = None) -> dict:
    headers = {}
    if username:
        r = client.post("/auth/token", data={"username": username, "password": "onemap"})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = client.get("/viewer/profile", headers=headers)
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-store"
    return r.json()


def test_each_role_gets_only_its_tools(client):
    anonymous, operator, leader = _profile(client), _profile(client, "operator"), _profile(client, f"leader-{LEADER_TOWN}")
    assert not any(anonymous["tools"].values()) and anonymous["username"] is None
    assert operator["tools"]["dispatch"] and operator["tools"]["filter_townships"]
    assert len(operator["township_list"]) == 9
    assert leader["tools"]["dispatch"] and not leader["tools"]["filter_townships"]
    assert [t["code"] for t in leader["township_list"]] == [LEADER_TOWN]
    assert {t["name"] for t in operator["transitions"]} >= {"accept", "dispatch", "close"}


def test_a_leader_starts_on_his_own_township(client):
    county = _profile(client, "operator")["home"]
    own = _profile(client, f"leader-{LEADER_TOWN}")["home"]
    [town] = [t for t in _profile(client, "operator")["township_list"] if t["code"] == LEADER_TOWN]
    assert own == pytest.approx(town["bbox"], abs=1e-5)
    assert (own[2] - own[0]) < (county[2] - county[0])


def _glyphs(pbf: bytes) -> dict[int, tuple[int, int, int]]:
    """{codepoint: (width, height, bitmap bytes)} of a glyph PBF (read with a tiny protobuf reader)."""
    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = _varint(buf, i)
            num, wire = key >> 3, key & 7
            if wire == 0:
                val, i = _varint(buf, i)
            else:
                n, i = _varint(buf, i)
                val, i = buf[i:i + n], i + n
            yield num, val

    out = {}
    for _, stack in fields(pbf):
        for num, glyph in fields(stack):
            if num == 3:
                g = dict(fields(glyph))
                out[g[1]] = (g.get(3, 0), g.get(4, 0), len(g.get(2, b"")))
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def test_the_label_glyphs_of_latin_and_digits_are_served(client):
    r = client.get("/fonts/Sans%20Regular/0-255.pbf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    glyphs = _glyphs(r.content)
    for ch in "A9z":
        w, h, size = glyphs[ord(ch)]
        assert w > 0 and h > 0 and size == (w + 6) * (h + 6)  # the SDF has a 3-pixel buffer
    assert glyphs[ord(" ")][0] == 0


@pytest.mark.parametrize("path", ["/fonts/Sans/0-254.pbf", "/fonts/Sans/1-256.pbf", "/fonts/Sans/65536-65791.pbf",
                                  "/fonts/Sans/a-b.pbf", f"/fonts/{'x' * 300}/0-255.pbf"])
def test_bad_glyph_requests_are_400(client, path):
    r = client.get(path)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["parameter"] in ("range", "fontstack")


def test_each_township_is_named_once_from_a_point_inside_it(client):
    """The map writes a township's name once, inside it (not once per vector tile the township crosses)."""
    from shapely.geometry import Point, shape

    operator = _profile(client, "operator")
    towns = {f["properties"]["township_code"]: shape(f["geometry"])
             for f in client.get("/collections/townships/items", params={"limit": 100}).json()["features"]}
    labels = operator["township_labels"]
    assert sorted(t["code"] for t in labels) == sorted(towns)
    for t in labels:
        assert towns[t["code"]].contains(Point(t["label"])), t
        assert t["name_zh"]
