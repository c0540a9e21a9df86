"""The HTML pages in headless Chromium with the network cut to 127.0.0.1: nothing leaves the machine, nothing
the pages load is missing, and a person logs in through the form and browses a protected collection."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import Settings
from tests.conftest import postgis_url, sample_dir
from tests.e2e.live_server import live_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PAGES = ["/", "/collections", "/collections/townships", "/collections/townships/items",
         "/collections/townships/items/1", "/collections/townships/queryables", "/conformance"]
LEADER = "leader-632626100"
PROTECTED = "/collections/events/items?f=html"


@pytest.fixture(scope="module", params=["embedded", "postgis"])
def server(request):
    for need in ("bootstrap", "leaflet", "playwright-core"):
        if not (ROOT / "node_modules" / need).is_dir():
            pytest.fail(f"npm {need} is missing: run `make npm` (make test does)")
    db = str(sample_dir() / "county.gpkg") if request.param == "embedded" else postgis_url()
    # No background jobs: the shared sample county is read-only (the deadline job would mark its events).
    with live_server(create_app(Settings(database=db, sample_dir=sample_dir(), jobs=False))) as url:
        yield url


@pytest.fixture(scope="module")
def report(server, tmp_path_factory) -> dict:
    plan = {"base": server, "pages": PAGES, "shots": str(tmp_path_factory.mktemp("html-shots")),
            "login": {"username": LEADER, "password": "onemap", "next": PROTECTED}}
    done = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "html_pages.mjs"), json.dumps(plan)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_request_leaves_the_machine(report):
    assert report["outside"] == []


def test_every_page_loads_whole_with_no_error(report):
    for page in report["pages"]:
        assert page["status"] == 200, page
        assert page["failed"] == [], page  # no 404 (or any error) among the page's own resources
        assert page["errors"] == [], page
        assert all(link.startswith(report["pages"][0]["url"].rstrip("/")) for link in page["links"]), page["links"]


def test_maps_are_drawn_and_tables_filled(report):
    by_path = {page["path"]: page for page in report["pages"]}
    for path in ("/collections/townships", "/collections/townships/items", "/collections/townships/items/1"):
        assert by_path[path]["map"] is True, path  # Leaflet ran and drew the extent or the features
    assert by_path["/collections"]["rows"] >= 3
    assert by_path["/collections/townships/items"]["rows"] == 9  # the sample county's 8 townships and 1 town
    assert by_path["/collections/townships/items"]["crumbs"] == "Home Collections Townships Items"


def test_a_person_logs_in_with_the_form_and_sees_a_protected_collection(report):
    after = report["pages"][-1]
    assert after["path"] == "after-login" and after["status"] == 200
    assert after["url"].endswith(PROTECTED), after["url"]
    assert after["rows"] == 10 and after["map"] is True and after["failed"] == []
    assert report["login"]["who"] == [f"{LEADER} (leader)"]
    [cookie] = [c for c in report["login"]["cookies"] if c["name"] == "onemap_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
