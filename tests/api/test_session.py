"""Browser login: the form, the session cookie's flags, logout, and that a cookie alone never authorizes a write."""

from __future__ import annotations

from http.cookies import SimpleCookie

import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.session import COOKIE
from api.settings import Settings
from tests.api import county
from tests.api.conftest import SECRET, login
from tests.tiles.mvt import decode
from tiles.tms import get_tiling

HTML = {"Accept": "text/html"}
EVENT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.2, 33.2]},
         "properties": {"title": "by cookie", "type": "garbage", "status": "reported", "priority": "normal",
                        "reported_at": "2024-05-02T00:00:00Z", "reporter": "leader-A"}}


def log_in(client, username: str, password: str = county.PASSWORD, base: str = "http://testserver", **extra):
    """POST the login form; returns the response (not followed) with the client's cookie jar left empty."""
    r = client.post(f"{base}/login", data={"username": username, "password": password, **extra},
                    follow_redirects=False, headers=extra.pop("headers", None) or {})
    client.cookies.clear()  # every request below names its cookie itself
    return r


def cookie_of(response) -> SimpleCookie:
    jar = SimpleCookie()
    for value in response.headers.get_list("set-cookie"):
        jar.load(value)
    return jar


def session(client, username: str) -> dict[str, str]:
    """A Cookie header carrying a fresh session of `username`."""
    r = log_in(client, username)
    assert r.status_code == 303, r.text
    return {"Cookie": f"{COOKIE}={cookie_of(r)[COOKIE].value}"}


def count_events(client) -> int:
    return client.get("/collections/events/items", params={"limit": 1}, headers=login(client, "admin")).json()[
        "numberMatched"]


def test_the_login_page_is_a_form_with_the_inputs_password_managers_expect(client):
    r = client.get("/login", params={"next": "/collections/events/items?f=html"}, headers=HTML)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<input class="form-control" type="text" id="username" name="username" autocomplete="username"' in r.text
    assert 'name="password" autocomplete="current-password"' in r.text
    assert 'method="post" action="http://testserver/login"' in r.text
    assert 'value="/collections/events/items?f=html"' in r.text


def test_logging_in_sets_an_httponly_samesite_cookie_and_goes_where_the_person_was_going(client):
    r = log_in(client, "leader-A", next="/collections/events/items?f=html")
    assert r.status_code == 303
    assert r.headers["location"] == "http://testserver/collections/events/items?f=html"
    morsel = cookie_of(r)[COOKIE]
    assert morsel["httponly"] is True and morsel["samesite"].lower() == "lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here: a Secure cookie would never come back
    assert 0 < int(morsel["max-age"]) <= 24 * 3600
    claims = jwt.decode(morsel.value, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "leader-A"


def test_over_https_the_cookie_is_secure(client, county_db):
    assert cookie_of(log_in(client, "leader-A", base="https://testserver"))[COOKIE]["secure"] is True
    # Behind a proxy that ends TLS, the public URL says https: the cookie is Secure there too.
    settings = Settings(database=county_db, secret=SECRET, public_url="https://onemap.example")
    with TestClient(create_app(settings)) as proxied:
        r = log_in(proxied, "leader-A")
    assert r.status_code == 303 and r.headers["location"] == "https://onemap.example/"
    assert cookie_of(r)[COOKIE]["secure"] is True


def test_a_wrong_password_shows_the_form_again_and_sets_no_cookie(client):
    r = log_in(client, "leader-A", password="wrong")
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    assert "wrong username or password" in r.text and 'value="leader-A"' in r.text
    assert not r.headers.get_list("set-cookie")
    assert "Basic" not in r.headers.get("www-authenticate", "")  # no browser password dialog over the form


def test_the_cookie_lets_a_person_browse_protected_collections_and_items_of_their_townships(client):
    cookie = session(client, "leader-A")
    assert client.get("/collections/events/items", headers=HTML).status_code == 404  # without it: hidden
    page = client.get("/collections/events/items", headers={**HTML, **cookie})
    assert page.status_code == 200 and "leader-A (leader)" in page.text
    doc = client.get("/collections/events/items", params={"limit": 100}, headers=cookie).json()
    assert doc["numberMatched"] == 10 and {f["properties"]["township_code"] for f in doc["features"]} == {"A"}
    fid = doc["features"][0]["id"]
    assert client.get(f"/collections/events/items/{fid}", headers={**HTML, **cookie}).status_code == 200
    other = client.get("/collections/events/items", params={"limit": 100}, headers=login(client, "leader-B")).json()
    hidden = other["features"][0]["id"]  # township B's event: absent for leader-A, cookie or not
    assert client.get(f"/collections/events/items/{hidden}", headers=cookie).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_cookie_alone_never_authorizes_a_write(client, method):
    cookie = session(client, "leader-A")
    before = count_events(client)
    fid = client.get("/collections/events/items", params={"limit": 1}, headers=cookie).json()["features"][0]["id"]
    path = "/collections/events/items" + ("" if method == "POST" else f"/{fid}")
    body = EVENT if method != "PATCH" else {"properties": {"title": "changed by a cookie"}}
    headers = {**cookie, "Content-Type": "application/geo+json" if method != "PATCH" else "application/merge-patch+json",
               "Origin": "http://testserver"}
    r = client.request(method, path, json=body if method != "DELETE" else None, headers=headers)
    assert r.status_code in (401, 403, 404), (method, r.status_code, r.text)
    assert count_events(client) == before
    kept = client.get(f"/collections/events/items/{fid}", headers=login(client, "leader-A"))
    assert kept.status_code == 200 and kept.json()["properties"]["title"] != "changed by a cookie"
    # The same write with the person's bearer token is allowed: only the cookie is refused.
    if method == "POST":
        ok = client.post(path, json=EVENT, headers={**login(client, "leader-A"), "Content-Type": "application/geo+json"})
        assert ok.status_code == 201, ok.text
        client.delete(ok.headers["location"].replace("http://testserver", ""), headers=login(client, "admin"))


def test_logging_out_forgets_the_cookie(client):
    cookie = session(client, "leader-A")
    r = client.post("/logout", headers={**cookie, "Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "http://testserver/"
    gone = cookie_of(r)[COOKIE]
    assert gone.value == "" and (gone["max-age"] == "0" or gone["expires"])
    assert gone["httponly"] is True
    client.cookies.clear()


def test_login_and_logout_posted_from_another_site_are_refused(client):
    r = log_in(client, "leader-A", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and not r.headers.get_list("set-cookie")
    r = log_in(client, "leader-A", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert log_in(client, "leader-A", headers={"Origin": "http://testserver"}).status_code == 303
    r = client.post("/logout", headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and not r.headers.get_list("set-cookie")


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "collections"])
def test_after_login_a_person_is_only_sent_somewhere_on_this_server(client, target):
    r = log_in(client, "leader-A", next=target)
    assert r.status_code == 303 and r.headers["location"] == "http://testserver/"


def test_a_forged_or_expired_cookie_browses_as_anyone(client):
    forged = jwt.encode({"iss": "onemap", "sub": "admin", "role": "admin", "exp": 4102444800}, "not-our-secret-but-long-enough-for-hs256",
                        algorithm="HS256")
    expired = jwt.encode({"iss": "onemap", "sub": "admin", "role": "admin", "exp": 1000}, SECRET, algorithm="HS256")
    for token in (forged, expired, "garbage"):
        cookie = {"Cookie": f"{COOKIE}={token}"}
        assert client.get("/collections/townships/items", headers=cookie).status_code == 200
        assert client.get("/collections/events/items", headers=cookie).status_code == 404


def test_tiles_follow_the_session_and_vary_with_the_cookie(client):
    cookie = session(client, "leader-A")
    t = get_tiling("WebMercatorQuad").tms.tile(100.025, 33.1, 14)  # township A's first event
    path = f"/collections/events/tiles/WebMercatorQuad/14/{t.y}/{t.x}"
    assert client.get(path).status_code == 404  # events are not public
    r = client.get(path, headers=cookie)
    assert r.status_code == 200 and len(decode(r.content)["events"]) >= 1
    assert "Cookie" in r.headers["vary"] and "private" in r.headers["cache-control"]
    # A public answer too: one browser must not reuse the anonymous tile once someone has logged in on it.
    combined = client.get(f"/tiles/WebMercatorQuad/14/{t.y}/{t.x}")
    assert "Cookie" in combined.headers["vary"]
    assert "Cookie" in client.get("/wmts/1.0.0/WMTSCapabilities.xml").headers["vary"]
