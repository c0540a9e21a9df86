"""Errors on the routes pygeoapi renders (landing, collections, queryables, OpenAPI) are problem+json too."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["detail"]
    return body


def test_queryables_with_an_unknown_property_is_a_400_problem_from_pygeoapi(client):
    body = _problem(client.get("/collections/townships/queryables", params={"properties": "colour"}), 400)
    assert "unknown properties" in body["detail"]
    ok = client.get("/collections/townships/queryables", params={"properties": "name"})
    assert ok.status_code == 200 and "name" in ok.json()["properties"]
    assert "township_code" not in ok.json()["properties"]


@pytest.mark.parametrize("path", ["/", "/collections", "/collections/townships", "/openapi",
                                  "/collections/townships/queryables"])
def test_an_unknown_output_format_is_a_400_problem_naming_f(client, path):
    assert _problem(client.get(path, params={"f": "xml"}), 400)["parameter"] == "f"
    assert client.get(path, params={"f": "html"}).status_code == 200


@pytest.mark.parametrize("path", ["/collections/rivers", "/collections/rivers/queryables",
                                  "/collections/events/queryables"])  # events are not public
def test_a_collection_the_caller_cannot_see_is_a_404_problem(client, path):
    assert _problem(client.get(path), 404)["parameter"] == "collectionId"


def test_an_unknown_path_is_a_404_problem(client):
    _problem(client.get("/collections/townships/nothing-here"), 404)
