"""The API keys docs/guide.md documents work on the generated sample county, in both stores, and reach no further."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import authenticate_api_key
from api.settings import Settings
from geoserver.access import Scope, scope_for
from geoserver.errors import Unauthorized
from geoserver.features import FeatureQuery
from tests.conftest import STORE_KINDS, postgis_url, sample_dir

EXTERNAL_KEY = "om_sample_external"  # exactly as docs/guide.md prints it
GRANTED = {"grids", "buildings"}


def test_the_documented_external_key_reads_its_granted_layers_and_no_other_protected_one(sample_store):
    principal = authenticate_api_key(sample_store, EXTERNAL_KEY)
    assert principal.username == "external"
    for layer in sample_store.catalog:
        page = sample_store.query(layer.id, FeatureQuery(limit=1), scope_for(principal, layer, "read"))
        if layer.public or layer.id in GRANTED:
            assert page.number_matched > 0, layer.id
        else:
            assert page.number_matched == 0 and not page.features, layer.id


def test_the_documented_leader_key_stands_for_the_first_townships_leader_only(sample_store):
    townships = sample_store.query("townships", FeatureQuery(limit=100), Scope.everything()).features
    first, second = sorted(t.properties["township_code"] for t in townships)[:2]
    principal = authenticate_api_key(sample_store, f"om_sample_leader-{first}")
    assert principal.role == "leader" and principal.townships == {first}
    with pytest.raises(Unauthorized):
        authenticate_api_key(sample_store, f"om_sample_leader-{second}")


@pytest.fixture(scope="module", params=STORE_KINDS)
def sample_client(request):
    """The app serving the generated sample county from each store."""
    database = str(sample_dir() / "county.gpkg") if request.param == "embedded" else postgis_url()
    settings = Settings(database=database, sample_dir=sample_dir(), public_url="http://testserver", jobs=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_over_http_the_external_key_lists_and_reads_exactly_the_granted_collections(sample_client):
    anonymous = {c["id"] for c in sample_client.get("/collections").json()["collections"]}
    headers = {"X-API-Key": EXTERNAL_KEY}
    with_key = {c["id"] for c in sample_client.get("/collections", headers=headers).json()["collections"]}
    assert with_key == anonymous | GRANTED
    r = sample_client.get("/collections/grids/items", params={"limit": 5}, headers=headers)
    assert r.status_code == 200 and r.json()["numberReturned"] == 5
    assert sample_client.get("/collections/events/items", headers=headers).status_code == 404
    assert sample_client.get("/collections/grids/items").status_code == 404  # without the key: no such collection
