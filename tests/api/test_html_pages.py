"""The HTML pages as a person gets them: our own assets only, no dead link, breadcrumbs, and no 500 when
someone logged in opens a protected collection after anyone else has opened a page."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.api.conftest import login

HTML = {"Accept": "text/html"}
PUBLIC_PAGES = ["/", "/conformance", "/collections", "/collections/townships", "/collections/townships/items",
                "/collections/townships/items/1", "/collections/townships/queryables", "/login"]
PROTECTED_PAGES = ["/collections/events", "/collections/events/items", "/collections/events/queryables"]


class _Page(HTMLParser):
    """The URLs a page loads (src, stylesheet href) and links to (a href, form action), and its breadcrumb."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.links: list[str] = []
        self.crumbs: list[str] = []
        self._in_crumb = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.assets.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.assets.append(a["href"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form" and a.get("action"):
            self.links.append(a["action"])
        if tag == "li" and "breadcrumb-item" in (a.get("class") or ""):
            self._in_crumb = True
            self.crumbs.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._in_crumb = False

    def handle_data(self, data: str) -> None:
        if self._in_crumb:
            self.crumbs[-1] += data.strip()


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def page(client, path: str, headers: dict | None = None) -> _Page:
    r = client.get(path, headers={**HTML, **(headers or {})})
    assert r.status_code == 200, (path, r.text[:500])
    assert r.headers["content-type"].startswith("text/html"), path
    return parse(r.text)


def test_a_protected_collection_page_opens_for_a_leader_after_an_anonymous_visitor_opened_pages(client):
    # pygeoapi 0.21 cached the first rendered config per language (l10n._cfg_cache): after an anonymous page,
    # a collection the anonymous config lacked crashed its template for everyone logged in.
    leader = login(client, "leader-A")
    for path in ("/collections", "/collections/townships", "/"):
        page(client, path)
    for path in PROTECTED_PAGES:
        r = client.get(path, headers={**HTML, **leader})
        assert r.status_code == 200, (path, r.text[:300])
        assert "Events" in r.text
    json_doc = client.get("/collections/events", headers=leader).json()
    assert json_doc["id"] == "events"


@pytest.mark.parametrize("who", [None, "leader-A"])
def test_every_page_loads_only_our_own_assets_and_links_only_to_what_we_serve(client, who):
    headers = login(client, who) if who else {}
    paths = PUBLIC_PAGES + (PROTECTED_PAGES + ["/collections/events/items/1"] if who else [])
    checked: dict[str, int] = {}
    for path in paths:
        p = page(client, path, headers)
        for url in p.assets + p.links:
            target = urlsplit(urljoin("http://testserver" + path, url))
            assert target.scheme == "http" and target.netloc == "testserver", (path, url)  # no CDN, no other host
            key = target.path + ("?" + target.query if target.query else "")
            if key in checked or target.path == "/logout":  # logout is a form that posts: test_session.py
                continue
            checked[key] = client.get(key, headers=headers).status_code
    dead = {url: status for url, status in checked.items() if status >= 400}
    assert not dead, dead
    assert any(url.startswith("/static/vendor/bootstrap/") for url in checked)
    assert any(url.startswith("/static/vendor/leaflet/") for url in checked)


def test_the_landing_page_links_no_processes_jobs_or_misspelled_tile_matrix_sets(client):
    doc = client.get("/", params={"f": "json"}).json()
    hrefs = [link["href"] for link in doc["links"]]
    assert not [h for h in hrefs if any(s in h for s in ("/processes", "/jobs", "/TileMatrixSets"))], hrefs
    assert any(urlsplit(h).path == "/tileMatrixSets" for h in hrefs)
    html_links = page(client, "/").links
    assert not [h for h in html_links if any(s in h for s in ("/processes", "/jobs", "/TileMatrixSets"))]
    assert any(urlsplit(h).path == "/tileMatrixSets" for h in html_links)


def test_collection_documents_link_no_schema_we_do_not_serve(client):
    for doc in (client.get("/collections/townships").json(), *client.get("/collections").json()["collections"]):
        assert not [link for link in doc["links"] if "/schema" in link["href"]], doc["id"]
        assert any(link["rel"] == "items" for link in doc["links"])


@pytest.mark.parametrize("path, crumbs", [
    ("/collections", ["Home", "Collections"]),
    ("/collections/townships", ["Home", "Collections", "Townships"]),
    ("/collections/townships/items", ["Home", "Collections", "Townships", "Items"]),
    ("/collections/townships/items/2", ["Home", "Collections", "Townships", "Items", "2"]),
    ("/collections/townships/queryables", ["Home", "Collections", "Townships", "Queryables"]),
])
def test_breadcrumbs_name_every_step(client, path, crumbs):
    assert page(client, path).crumbs == crumbs


def test_the_items_page_has_a_filter_form_that_filters(client):
    leader = login(client, "leader-A")
    r = client.get("/collections/events/items", params={"f": "html", "filter": "type = 'garbage'", "bbox": "",
                                                         "datetime": "", "limit": "50"}, headers=leader)
    assert r.status_code == 200, r.text[:300]
    p = parse(r.text)
    assert "http://testserver/collections/events/items" in p.links  # the form submits to the items page itself
    for name in ('name="filter"', 'name="bbox"', 'name="datetime"'):
        assert name in r.text
    assert "5 features match" in r.text  # leader-A's township holds 10 events, every other one garbage
    assert r.text.count('href="http://testserver/collections/events/items/') == 5


def test_a_bad_filter_in_the_form_is_a_400_page_naming_the_problem(client):
    r = client.get("/collections/townships/items", params={"f": "html", "filter": "name = "}, headers=HTML)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "filter" in r.text and "Start over" in r.text
    api = client.get("/collections/townships/items", params={"filter": "name = "})
    assert api.status_code == 400 and api.headers["content-type"] == "application/problem+json"


def test_a_protected_page_while_logged_out_is_a_404_page_offering_to_log_in(client):
    r = client.get("/collections/events/items", headers=HTML)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "/login?next=%2Fcollections%2Fevents%2Fitems" in r.text


def test_pages_are_private_and_say_where_they_may_load_from(client):
    r = client.get("/collections", headers=HTML)
    assert "no-store" in r.headers["cache-control"] and "Cookie" in r.headers["vary"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
