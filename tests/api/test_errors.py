"""Every core error class reaches the client as one HTTP status with a problem+json body."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geoserver import errors
from geoserver.idempotency import KeyReused

CASES = [
    (errors.BadInput("bbox must have four numbers", parameter="bbox"), 400, "bbox"),
    (errors.LoadError("not a number", file="x.csv", row=3, field="floors"), 400, "floors"),
    (errors.Unauthorized("token expired"), 401, None),
    (errors.Forbidden("not your township"), 403, None),
    (errors.NotFound("no feature 7", parameter="featureId"), 404, "featureId"),
    (errors.Conflict("already closed"), 409, None),
    (errors.PreconditionFailed("ETag mismatch"), 412, None),
    (errors.StoreUnavailable("no onemap schema"), 503, None),
    (errors.StoreUnavailable("database is down", retry_after=0.5), 503, None),
    (KeyReused("key used for another request", parameter="Idempotency-Key"), 422, "Idempotency-Key"),
    (errors.TooLarge("the body is larger than 5 MB", parameter="body"), 413, "body"),
]


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings(database=str(tmp_path / "t.gpkg"), migrate_on_start=True))

    def boom(i: int):
        raise CASES[i][0]

    app.add_api_route("/boom/{i}", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("i", range(len(CASES)))
def test_core_errors_map_to_one_status_each(client, i):
    exc, status, parameter = CASES[i]
    r = client.get(f"/boom/{i}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert exc.message in body["detail"]
    assert body.get("parameter") == parameter


def test_unauthorized_asks_for_a_bearer_token(client):
    assert client.get("/boom/2").headers["www-authenticate"] == "Bearer"


def test_a_passing_outage_says_when_to_retry_and_a_lasting_one_does_not(client):
    down, no_schema = (next(i for i, case in enumerate(CASES) if case[0].message == m)
                       for m in ("database is down", "no onemap schema"))
    assert client.get(f"/boom/{down}").headers["retry-after"] == "1"  # whole seconds, at least one
    assert "retry-after" not in client.get(f"/boom/{no_schema}").headers


def test_unknown_path_is_a_problem_404(client):
    r = client.get("/no/such/path")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_non_integer_path_parameter_is_a_400_naming_it(client):
    r = client.get("/boom/seven")
    assert r.status_code == 400
    assert r.json()["parameter"] == "i"


def test_healthz_reports_the_store(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["store"] == "embedded"


def test_a_missing_store_fails_at_start_with_its_name(tmp_path):
    app = create_app(Settings(database=str(tmp_path / "no" / "such" / "dir" / "county.gpkg")))
    with pytest.raises(errors.StoreUnavailable, match="county.gpkg"):
        with TestClient(app):
            pass
