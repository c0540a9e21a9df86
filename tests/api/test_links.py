"""Links point where the client reached us: the configured public URL, else the request's own base URL."""

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import SECRET


def hrefs(doc: dict) -> list[str]:
    return [link["href"] for link in doc.get("links", [])]


def test_without_a_public_url_links_follow_the_host_the_client_used(county_db):
    app = create_app(Settings(database=county_db, secret=SECRET))
    with TestClient(app, base_url="http://county.example:8010") as c:
        for path in ("/", "/collections", "/collections/townships", "/collections/townships/items"):
            links = hrefs(c.get(path, params={"f": "json"}).json())
            assert links, path
            assert all(h.startswith("http://county.example:8010") for h in links if h.startswith("http")), \
                (path, links)
    with TestClient(app, base_url="http://10.0.0.5:9000") as c:
        links = hrefs(c.get("/collections/townships/items").json())
        assert any(h.startswith("http://10.0.0.5:9000/collections/townships/items") for h in links)


def test_a_configured_public_url_wins_behind_a_proxy(county_db):
    app = create_app(Settings(database=county_db, secret=SECRET, public_url="https://map.county.gov.cn/onemap"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        links = hrefs(c.get("/collections/townships/items").json())
        assert any(h.startswith("https://map.county.gov.cn/onemap/collections/townships/items") for h in links)
