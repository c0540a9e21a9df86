"""The one-map application in headless Chromium on both stores: login through the form, layers drawn, a
leader kept to his township, identify, a filter reaching the tiles, search, dispatch from the panel, live
updates through /stream -- and no console error and no request to any host but ours."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
import rasterio
from playwright import sync_api as playwright_api

from api.app import create_app
from api.settings import Settings
from geoserver.store import open_store
from layers import alarm_rules, event_types
from tests.conftest import STORE_KINDS, make_empty_store, sample_dir
from tests.e2e.live_server import live_server
from tests.e2e.viewer_browser import launch, log_in, wait_idle, watched_page

pytestmark = pytest.mark.e2e
LEADER_TOWN = "632626100"
LEADER = f"leader-{LEADER_TOWN}"


@pytest.fixture(scope="module", params=STORE_KINDS)
def server(request, catalog, tmp_path_factory, fresh_postgis_url):
    """A writable copy of the sample county (the dispatch test changes an event) served on a free port."""
    from sample_data.generate import generate

    tmp = tmp_path_factory.mktemp(f"viewer-{request.param}")
    for name in ("county.gpkg", "imagery.tif", "dem.tif", "manifest.json"):
        shutil.copy(sample_dir() / name, tmp / name)
    if request.param == "embedded":
        db = str(tmp / "county.gpkg")
    else:
        make_empty_store("postgis", catalog, tmp, fresh_postgis_url).close()
        generate(tmp, load=fresh_postgis_url)  # the files are there: this only loads the database
        store = open_store(fresh_postgis_url, catalog)  # what `onemap db upgrade` seeds: types, alarm rules
        store.open()
        try:
            event_types.seed_defaults(store)
            alarm_rules.seed_defaults(store)
        finally:
            store.close()
        db = fresh_postgis_url
    with live_server(create_app(Settings(database=db, sample_dir=tmp, jobs=False))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def token(server: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{server}/auth/token", data={"username": username, "password": "onemap"})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def pixels(path) -> np.ndarray:
    with rasterio.open(path) as png:
        return png.read([1, 2, 3]).astype(int)


def near(rgb: np.ndarray, colour: str, tol: int = 40) -> int:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return int(((abs(rgb[0] - r) < tol) & (abs(rgb[1] - g) < tol) & (abs(rgb[2] - b) < tol)).sum())


def rendered(page, layer: str) -> list[dict]:
    return page.evaluate("(id) => window.__map.queryRenderedFeatures({layers: [id]}).map("
                         "(f) => ({id: f.id, p: f.properties, g: f.geometry}))", layer)


def test_the_operator_logs_in_with_the_form_and_sees_the_county_drawn(server, browser, tmp_path):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    assert w.page.inner_text("#who") == "operator (operator)"
    assert w.page.evaluate("localStorage.getItem('onemap.token')")
    assert any(c["name"] == "onemap_session" for c in w.page.context.cookies())  # the HTML pages' session too
    assert not w.page.is_hidden('[data-tab="events"]')  # an operator has the events tools
    shot = tmp_path / "operator.png"
    w.page.screenshot(path=str(shot))
    rgb = pixels(shot)
    assert near(rgb, "#1f4e79", 30) > 200, f"no township boundaries drawn; see {shot}"
    assert rendered(w.page, "events"), "no events drawn"
    assert w.page.evaluate("window.__map.getStyle().glyphs").endswith("/fonts/{fontstack}/{range}.pbf")
    assert rendered(w.page, "townships-label"), "no township labels"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_a_leader_starts_on_his_township_and_never_sees_another(server, browser):
    w = watched_page(browser, keep_json=True)
    log_in(w.page, server, LEADER)
    bbox = httpx.get(f"{server}/collections/townships/items", params={"township_code": LEADER_TOWN}).json()
    [own] = bbox["features"]
    lon, lat = w.page.evaluate("(() => { const c = window.__map.getCenter(); return [c.lng, c.lat]; })()")
    xs = [c[0] for ring in own["geometry"]["coordinates"] for part in ring for c in part]
    ys = [c[1] for ring in own["geometry"]["coordinates"] for part in ring for c in part]
    assert min(xs) <= lon <= max(xs) and min(ys) <= lat <= max(ys), "the map did not start on his township"
    w.page.wait_for_selector('#filters button[type="submit"]', state="attached")  # the form is built (after the paint)
    assert w.page.is_hidden('#filters [name="township"]') or not w.page.query_selector('#filters [name="township"]')
    w.page.click('#tabs button[data-tab="events"]')
    w.page.click('#events .tabs button[data-queue="open"]')
    w.page.wait_for_selector("#events .queue li")
    # Zoom in far enough that points come unclustered, with their township.
    w.page.evaluate(f"window.__map.jumpTo({{center: [{lon}, {lat}], zoom: 15}})")
    wait_idle(w.page)
    for layer in ("events", "grids", "buildings", "temples", "monitoring_sites"):
        for f in rendered(w.page, layer):
            assert f["p"].get("township_code") in (None, LEADER_TOWN), (layer, f["p"])
    for url, body in w.json:
        for f in (body.get("features") or []) if isinstance(body, dict) else []:
            code = (f.get("properties") or {}).get("township_code")
            if "/collections/townships/" not in url and "/collections/villages/" not in url:
                assert code in (None, LEADER_TOWN), (url, code)
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_identify_shows_the_properties_and_a_cluster_expands(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    temple = httpx.get(f"{server}/collections/temples/items", params={"limit": 1},
                       headers=token(server, "operator")).json()["features"][0]
    lon, lat = temple["geometry"]["coordinates"]
    w.page.evaluate(f"window.__map.jumpTo({{center: [{lon}, {lat}], zoom: 16}})")
    wait_idle(w.page)
    x, y = w.page.evaluate(f"(() => {{ const p = window.__map.project([{lon}, {lat}]); return [p.x, p.y]; }})()")
    box = w.page.locator("#map").bounding_box()
    w.page.mouse.click(box["x"] + x, box["y"] + y)
    w.page.wait_for_selector("#identify .body table")
    assert temple["properties"]["name"] in w.page.inner_text("#identify")
    assert w.page.evaluate("window.__identified.layer") == "temples"
    # A cluster of events: a click zooms in.
    w.page.evaluate(f"window.__map.jumpTo({{center: [{lon}, {lat}], zoom: 9}})")
    wait_idle(w.page)
    clusters = [f for f in rendered(w.page, "events") if "point_count" in f["p"] and f["p"]["point_count"] > 1]
    assert clusters, "no event clusters at zoom 9"
    cx, cy = w.page.evaluate("(c) => { const p = window.__map.project(c); return [p.x, p.y]; }",
                             clusters[0]["g"]["coordinates"])
    w.page.mouse.click(box["x"] + cx, box["y"] + cy)
    w.page.wait_for_function("window.__map.getZoom() > 10")
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_a_filter_changes_what_is_drawn(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")

    def drawn() -> int:
        return sum(f["p"].get("point_count", 1) for f in rendered(w.page, "events"))

    before = drawn()  # the default: everything open, and the last 7 days
    w.page.click('#tabs button[data-tab="filters"]')
    w.page.fill('#filters [name="days"]', "0")
    w.page.uncheck('#filters [name="open"]')
    w.page.check('#filters [name="status"][value="closed"]')
    w.page.click('#filters button[type="submit"]')
    w.page.wait_for_function("(window.__filtered || '').includes(\"'closed'\")")
    wait_idle(w.page)
    after = drawn()
    assert after != before and after > 0, (before, after)
    assert all(f["p"].get("open_count", 0) == 0 for f in rendered(w.page, "events")), "open events still drawn"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_search_flies_to_a_result(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    temple = httpx.get(f"{server}/collections/temples/items", params={"limit": 1, "offset": 3},
                       headers=token(server, "operator")).json()["features"][0]
    w.page.fill("#search", temple["properties"]["name"])
    w.page.wait_for_selector("#results li")
    w.page.press("#search", "Enter")
    w.page.wait_for_selector("#identify .body table")
    wait_idle(w.page)
    lon, lat = w.page.evaluate("(() => { const c = window.__map.getCenter(); return [c.lng, c.lat]; })()")
    assert abs(lon - temple["geometry"]["coordinates"][0]) < 0.01 and abs(lat - temple["geometry"]["coordinates"][1]) < 0.01
    assert w.page.evaluate("window.__map.getZoom()") >= 15
    assert temple["properties"]["name"] in w.page.inner_text("#identify")
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_dispatch_from_the_panel_changes_the_event_on_the_server(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    op = token(server, "operator")
    w.page.click('#tabs button[data-tab="events"]')
    w.page.click('#events .tabs button[data-queue="new"]')
    w.page.wait_for_selector("#events .queue li")
    event_id = w.page.locator("#events .queue li").first.get_attribute("data-id")
    grid = httpx.get(f"{server}/collections/events/items/{event_id}", headers=op).json()["properties"]["grid_code"]
    team = [{"username": f"worker-{grid}", "role": "full_time"}, {"username": "dept-urban", "role": "department"}]
    r = httpx.put(f"{server}/grids/{grid}/bindings", headers=token(server, "admin"), json={"bindings": team})
    assert r.status_code == 200, r.text
    w.page.locator(f'#events .queue li[data-id="{event_id}"]').click()
    w.page.wait_for_selector('#events .detail button[data-action="accept"]')
    w.page.fill('#events .detail [name="note"]', "受理 from the browser test")
    w.page.click('#events .detail button[data-action="accept"]')
    w.page.wait_for_selector('#events .detail button[data-action="dispatch"]')  # the detail shows the new state
    event = httpx.get(f"{server}/collections/events/items/{event_id}", headers=op).json()
    assert event["properties"]["status"] == "accepted"
    timeline = httpx.get(f"{server}/events/{event_id}/timeline", headers=op).json()["timeline"]
    assert timeline[-1]["action"] == "accept" and timeline[-1]["actor"] == "operator"
    # The chooser offers the event's grid team; dispatch to the department bound to the grid.
    w.page.wait_for_selector('#events .detail .assign[data-ready="true"]')
    offered = w.page.eval_on_selector_all('#events .detail [name="assignee"] optgroup option', "(os) => os.map((o) => o.value)")
    assert sorted(offered) == sorted(b["username"] for b in team), offered
    w.page.select_option('#events .detail [name="assignee"]', "dept-urban")
    w.page.click('#events .detail button[data-action="dispatch"]')
    w.page.wait_for_function("document.querySelector('#events .detail .meta').textContent.includes('dept-urban')")
    event = httpx.get(f"{server}/collections/events/items/{event_id}", headers=op).json()
    assert event["properties"]["status"] == "dispatched" and event["properties"]["assignee"] == "dept-urban"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_a_reported_event_reaches_the_open_page_through_the_stream(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    w.page.click('#tabs button[data-tab="events"]')
    w.page.click('#events .tabs button[data-queue="new"]')
    w.page.wait_for_function("window.__streamReady === true")
    site = httpx.get(f"{server}/collections/temples/items", params={"limit": 1},
                     headers=token(server, "operator")).json()["features"][0]
    lon, lat = site["geometry"]["coordinates"]
    title = f"浏览器测试 {datetime.now(UTC).isoformat()}"
    r = httpx.post(f"{server}/collections/events/items", headers=token(server, "operator"), json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"title": title, "type": "garbage", "reported_at": datetime.now(UTC).isoformat()}})
    assert r.status_code == 201, r.text
    w.page.wait_for_function("(t) => [...document.querySelectorAll('#events .queue li b')].some((b) => b.textContent === t)",
                             arg=title, timeout=20_000)
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_an_alarm_raised_through_the_api_arrives_on_the_open_page(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    w.page.click('#tabs button[data-tab="alarms"]')
    w.page.wait_for_function("window.__streamReady === true")
    op = token(server, "operator")
    site = httpx.get(f"{server}/collections/monitoring_sites/items", params={"kind": "smoke", "limit": 1},
                     headers=op).json()["features"][0]
    sent = datetime.now(UTC)
    r = httpx.post(f"{server}/readings", headers=op, json={"readings": [{
        "site_id": site["id"], "metric": "smoke_density", "value": 0.9, "unit": "%obs/m",
        "observed_at": sent.isoformat()}]})
    assert r.status_code == 200, r.text
    # Within the wait, not timed here (bench/viewer/paint.py measures the delay): the marker and the list.
    w.page.wait_for_function("window.__lastAlarm && window.__lastAlarm.op === 'insert'", timeout=20_000)
    assert w.page.locator(".maplibregl-marker.pulse").count() >= 1
    w.page.wait_for_function("document.querySelector('#alarms .queue li.level-critical') !== null", timeout=20_000)
    # Acknowledge it from the panel: the server's alarm changes.
    alarm_id = w.page.evaluate("window.__lastAlarm.id")
    w.page.click(f'#alarms .queue li[data-id="{alarm_id}"] button[data-action="ack"]')
    w.page.wait_for_selector(f'#alarms .queue li[data-id="{alarm_id}"].status-acknowledged', timeout=20_000)
    alarm = httpx.get(f"{server}/collections/alarms/items/{alarm_id}", headers=op).json()
    assert alarm["properties"]["status"] == "acknowledged"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_a_leader_hears_no_alarm_of_another_township(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, LEADER)
    w.page.click('#tabs button[data-tab="alarms"]')
    w.page.wait_for_function("window.__streamReady === true")
    op = token(server, "operator")
    other = httpx.get(f"{server}/collections/monitoring_sites/items",
                      params={"kind": "smoke", "limit": 1, "filter": f"township_code <> '{LEADER_TOWN}'"},
                      headers=op).json()["features"][0]
    own = httpx.get(f"{server}/collections/monitoring_sites/items",
                    params={"kind": "smoke", "limit": 1, "township_code": LEADER_TOWN}, headers=op).json()["features"][0]
    for site in (other, own):  # the other township's first: if it leaked, it would arrive before his own
        r = httpx.post(f"{server}/readings", headers=op, json={"readings": [{
            "site_id": site["id"], "metric": "smoke_density", "value": 0.8, "unit": "%obs/m",
            "observed_at": datetime.now(UTC).isoformat()}]})
        assert r.status_code == 200, r.text
    w.page.wait_for_function("window.__lastAlarm && window.__lastAlarm.op === 'insert'", timeout=20_000)
    assert w.page.evaluate("window.__lastAlarm.township_code") == LEADER_TOWN
    for code in w.page.evaluate("[...document.querySelectorAll('#alarms .queue li')].map((li) => li.dataset.id)"):
        alarm = httpx.get(f"{server}/collections/alarms/items/{code}", headers=op).json()
        assert alarm["properties"]["township_code"] == LEADER_TOWN
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_replay_of_a_workers_day_advances_the_position_and_the_heat_map_draws(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    op = token(server, "operator")
    patrol = httpx.get(f"{server}/collections/patrols/items", params={"limit": 1, "status": "finished"},
                       headers=op).json()["features"][0]
    worker, started = patrol["properties"]["worker"], patrol["properties"]["started_at"]
    day = (datetime.fromisoformat(started) + timedelta(hours=8)).date().isoformat()  # a China Standard Time day
    w.page.click('#tabs button[data-tab="replay"]')
    w.page.wait_for_function("window.__replayPicker === true")
    w.page.fill('#replay-picker [name="day"]', day)
    w.page.dispatch_event('#replay-picker [name="day"]', "change")
    w.page.wait_for_selector(f'#replay-picker [name="worker"] option[value="{worker}"]', state="attached")
    w.page.select_option('#replay-picker [name="worker"]', worker)
    w.page.wait_for_selector(f'#replay-picker .patrols li[data-id="{patrol["id"]}"]')
    w.page.click('#replay-picker button[name="replayDay"]')
    w.page.wait_for_function("window.__replay && window.__replay.distance === 0")
    assert patrol["id"] in w.page.evaluate("window.__replay.patrols")  # the worker's day, this patrol among them
    start = w.page.evaluate("window.__replay.position")
    w.page.select_option('#replay select[name="speed"]', "64")
    w.page.click('#replay button[name="play"]')
    w.page.wait_for_function("window.__replay.distance > 100", timeout=30_000)
    w.page.click('#replay button[name="pause"]')
    assert w.page.evaluate("window.__replay.position") != start
    assert w.page.inner_text("#replay .dist").endswith("km")
    w.page.wait_for_selector("#replay .chart canvas")  # the speed chart (ECharts, served by us)
    # Scrubbing back to the start puts the worker back where he began.
    w.page.eval_on_selector('#replay [name="scrub"]', "(el) => { el.value = '0'; el.dispatchEvent(new Event('input')); }")
    assert w.page.evaluate("window.__replay.position") == start and w.page.evaluate("window.__replay.distance") == 0
    # A patrol identified on the map replays the same way.
    w.page.evaluate("(id) => window.__app.identify('patrols', id)", patrol["id"])
    w.page.click("#identify .links button")  # 轨迹回放
    w.page.wait_for_function("(id) => window.__replay.patrols.length === 1 && window.__replay.patrols[0] === id",
                             arg=patrol["id"])
    w.page.click('#tabs button[data-tab="layers"]')
    w.page.fill('#heat [name="heatDays"]', "3650")
    w.page.check('#heat input[name="heat"][value="events"]')
    w.page.wait_for_function("window.__heat && window.__heat.hexagons > 0", timeout=30_000)
    wait_idle(w.page)
    assert rendered(w.page, "heat-window"), "no hexagons drawn"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_the_white_model_opens_in_the_same_page_over_the_county(server, browser, tmp_path):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    w.page.click("#globe3d")
    # The white model and the imagery under it (the globe's own tiles) both loaded.
    w.page.wait_for_function("window.__globe && window.__globe.tileset.tilesLoaded"
                             " && window.__globe.viewer.scene.globe.tilesLoaded", timeout=120_000, polling=500)
    w.page.wait_for_function("new Promise((ok) => window.__globe.viewer.scene.postRender.addEventListener(() => ok(true)))")
    shot = tmp_path / "globe.png"
    w.page.screenshot(path=str(shot))
    rgb = pixels(shot)
    assert (rgb.min(axis=0) > 150).sum() > 200, f"no buildings drawn at the county view; see {shot}"
    greenish = (rgb[1] > rgb[2] + 15) & (rgb[1] > 60)  # the county's grassland in the imagery
    assert greenish.sum() > 10_000, f"no imagery under the white model; see {shot}"
    assert w.page.inner_text("#globe3d") == "二维"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()


def test_a_building_clicked_in_3d_shows_its_properties(server, browser):
    w = watched_page(browser)
    log_in(w.page, server, "operator")
    building = httpx.get(f"{server}/collections/buildings/items", params={"limit": 1, "filter": "is_key = true"},
                         headers=token(server, "operator")).json()["features"][0]
    ring = building["geometry"]["coordinates"][0][:-1]
    lon, lat = sum(c[0] for c in ring) / len(ring), sum(c[1] for c in ring) / len(ring)
    w.page.click("#globe3d")
    w.page.wait_for_function("window.__globe && window.__globe.tileset.tilesLoaded", timeout=120_000)
    # Close to the building, from the south: its leaf tile (with the buildings' ids) loads.
    w.page.evaluate("""([lon, lat]) => { const C = window.Cesium; window.__globe.viewer.camera.setView({
        destination: C.Cartesian3.fromDegrees(lon, lat - 0.0015, 160),
        orientation: { heading: 0, pitch: C.Math.toRadians(-45), roll: 0 } }); }""", [lon, lat])
    # Where on the screen a building with an id is drawn at the building's centre (once its tile is there).
    where = """([lon, lat, h]) => { const C = window.Cesium; const scene = window.__globe.viewer.scene;
        const p = C.SceneTransforms.worldToWindowCoordinates(scene, C.Cartesian3.fromDegrees(lon, lat, h));
        if (!p) return null;
        const f = scene.pick(p);
        const id = f instanceof C.Cesium3DTileFeature ? f.getProperty('id') : undefined;
        return id === undefined ? null : [p.x, p.y, Number(id)]; }"""
    handle = w.page.wait_for_function(where, arg=[lon, lat, building["properties"]["height"] / 2], timeout=120_000,
                                      polling=500)
    x, y, picked = handle.json_value()
    box = w.page.locator("#globe").bounding_box()
    w.page.mouse.click(box["x"] + x, box["y"] + y)
    w.page.wait_for_function("(id) => window.__identified && window.__identified.layer === 'buildings'"
                             " && window.__identified.id === id", arg=picked)
    shown = httpx.get(f"{server}/collections/buildings/items/{picked}", headers=token(server, "operator")).json()
    assert not w.page.is_hidden("#identify")
    text = w.page.inner_text("#identify")
    assert str(shown["properties"]["height"]) in text and shown["properties"]["township_code"] in text
    if shown["properties"].get("name"):
        assert shown["properties"]["name"] in text
    assert picked == building["id"], "another building stood in front of the one aimed at"
    assert w.clean(), (w.errors, w.failed, w.outside)
    w.page.context.close()
