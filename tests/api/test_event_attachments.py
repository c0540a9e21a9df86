"""Photos and files on events over HTTP, on both stores: upload (multipart), list, the bytes back with their
kind and ETag, EXIF position kept but never routing, the limits, who may see them, Idempotency-Key, linking to
an action, and concurrent uploads."""

from __future__ import annotations

import hashlib
import io
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from shapely.geometry import Point

from api.app import create_app
from api.settings import Settings
from geoserver.access import Scope
from geoserver.features import Feature
from tests.api.conftest import SECRET, login

ITEMS = "/collections/events/items"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def photo(kind: str = "JPEG", gps: tuple[float, float] | None = None, size: int = 16, noise: bool = False) -> bytes:
    """A small real image (`noise`: that does not compress); with `gps` (lon, lat) its EXIF says where."""
    image = (Image.frombytes("RGB", (size, size), random.Random(size).randbytes(size * size * 3)) if noise
             else Image.new("RGB", (size, size), "orange"))
    exif = Image.Exif()
    if gps is not None:
        def dms(value: float):
            d = int(value)
            m = int((value - d) * 60)
            return (IFDRational(d), IFDRational(m), IFDRational(round((value - d - m / 60) * 3600 * 100), 100))
        exif.get_ifd(0x8825).update({1: "N", 2: dms(gps[1]), 3: "E", 4: dms(gps[0])})
    out = io.BytesIO()
    image.save(out, kind, exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def people(client):
    """Tokens of the tiny county's people."""
    return {name: login(client, name) for name in ("admin", "operator", "leader-A", "leader-B", "worker-A1")}


@pytest.fixture
def event(client):
    """A new reported event of township A, by worker-A1."""
    [made] = client.app.state.store.insert("events", [Feature(None, Point(100.2, 33.3), {
        "title": "burst pipe", "type": "infrastructure", "status": "reported", "reported_at": datetime.now(UTC),
        "reporter": "worker-A1"})], Scope.everything())
    return made.id


def _upload(client, who, fid, content, name="photo.jpg", mime="image/jpeg", note=None, **headers):
    data = {"note": note} if note is not None else None
    return client.post(f"/events/{fid}/attachments", files={"file": (name, content, mime)}, data=data,
                       headers={**who, **headers})


def test_a_photo_is_stored_listed_and_served_back_with_its_kind_etag_and_exif_position(client, people, event):
    worker, op = people["worker-A1"], people["operator"]
    jpeg = photo(gps=(100.9, 33.4))  # taken in township B: kept, never routing
    r = _upload(client, worker, event, jpeg, name="IMG_0001.jpg", mime="application/octet-stream", note="the leak")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert (meta["media_type"], meta["size"], meta["filename"]) == ("image/jpeg", len(jpeg), "IMG_0001.jpg")
    assert meta["sha256"] == hashlib.sha256(jpeg).hexdigest() and meta["uploader"] == "worker-A1"
    assert meta["exif_location"] == {"lon": pytest.approx(100.9, abs=1e-4), "lat": pytest.approx(33.4, abs=1e-4)}
    assert r.headers["location"].endswith(meta["href"]) and r.headers["etag"] == f'"{meta["sha256"]}"'
    got = client.get(meta["href"], headers=op)
    assert got.status_code == 200 and got.content == jpeg
    assert got.headers["content-type"] == "image/jpeg" and got.headers["etag"] == r.headers["etag"]
    assert got.headers["x-content-type-options"] == "nosniff"
    assert client.get(meta["href"], headers={**op, "If-None-Match": got.headers["etag"]}).status_code == 304
    listed = client.get(f"/events/{event}/attachments", headers=op).json()
    assert [a["id"] for a in listed["attachments"]] == [meta["id"]]
    feature = client.get(f"{ITEMS}/{event}", headers=op).json()
    assert feature["properties"]["attachment_count"] == 1
    assert feature["properties"]["township_code"] == "A"  # the EXIF position routed nothing
    step = client.get(f"/events/{event}/timeline", headers=op).json()["timeline"][-1]
    assert (step["action"], step["actor"], step["note"]) == ("attach", "worker-A1", "the leak")
    assert step["data"]["attachment"] == meta["id"]
    change = client.app.state.store.changes_since(0, 100_000)[-1]
    assert (change.layer_id, change.fid, change.op) == ("events", event, "update")  # the stream learns


@pytest.mark.parametrize("kind, mime", [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_webp_and_pdf_are_taken_by_their_bytes(client, people, event, kind, mime):
    r = _upload(client, people["worker-A1"], event, photo(kind), name="scan.bin", mime="text/plain")
    assert r.status_code == 201 and r.json()["media_type"] == mime and r.json()["filename"] == "scan.bin" + (
        ".png" if kind == "PNG" else ".webp")
    r = _upload(client, people["worker-A1"], event, PDF, name="permit.pdf", mime="application/pdf")
    assert r.status_code == 201 and r.json()["media_type"] == "application/pdf"
    got = client.get(r.json()["href"], headers=people["operator"])
    assert got.headers["content-type"] == "application/pdf" and got.headers["content-disposition"].startswith(
        "attachment;")


@pytest.mark.parametrize("content, status, fragment", [
    (b"", 400, "empty"), (b"MZ\x90\x00 a windows program", 415, "none of the kinds"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "none of the kinds"),
    (b"\xff\xd8\xff\xe0 not really a jpeg", 415, "not a readable image"),
    (b"GIF89a" + b"\x00" * 20, 415, "none of the kinds"),
])
def test_a_bad_file_is_refused_naming_the_limit_and_writes_nothing(client, people, event, content, status, fragment):
    r = _upload(client, people["worker-A1"], event, content)
    assert r.status_code == status and r.json()["parameter"] == "file" and fragment in r.json()["detail"], r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/events/{event}/attachments", headers=people["operator"]).json()["attachments"] == []
    assert [t["action"] for t in client.get(f"/events/{event}/timeline",
                                            headers=people["operator"]).json()["timeline"]] == []


def test_a_file_over_the_limit_is_413_naming_the_setting(county_db, tmp_path):
    settings = Settings(database=county_db, secret=SECRET, max_attachment_mb=0.01)  # 10 KiB
    from fastapi.testclient import TestClient
    with TestClient(create_app(settings)) as small:
        op = login(small, "operator")
        [made] = small.app.state.store.insert("events", [Feature(None, Point(100.2, 33.3), {
            "title": "big photo", "type": "other", "status": "reported", "reported_at": datetime.now(UTC)})],
            Scope.everything())
        big = photo("PNG", size=100, noise=True)
        assert len(big) > 0.01 * 2**20
        for content in (big, big + b"\x00" * 200_000):  # caught by the route, and by the body limit
            r = _upload(small, op, made.id, content, name="big.png", mime="image/png")
            assert r.status_code == 413, r.text
            assert "ONEMAP_MAX_ATTACHMENT_MB" in r.json()["detail"] and "0.01 MB" in r.json()["detail"]
        assert small.get(f"/events/{made.id}/attachments", headers=op).json()["attachments"] == []
    with pytest.raises(ValueError, match="ONEMAP_MAX_ATTACHMENT_MB"):
        Settings(max_attachment_mb=0)
    assert Settings.from_env({"ONEMAP_MAX_ATTACHMENT_MB": "3"}).max_attachment_bytes == 3 * 2**20


def test_absurd_names_are_cleaned_never_used_as_paths(client, people, event):
    worker = people["worker-A1"]
    for name, stored in (("../../etc/passwd", "passwd.jpg"), ("..\\..\\boot.ini", "boot.ini.jpg"),
                         ("..", "attachment.jpg"),
                         ("照片 1.JPG", "照片 1.JPG")):
        r = _upload(client, worker, event, photo(), name=name)
        assert r.status_code == 201 and r.json()["filename"] == stored, (name, r.text)
    r = _upload(client, worker, event, photo(), name="")  # a form's "no file chosen"
    assert r.status_code == 400 and r.json()["parameter"] == "file"
    r = _upload(client, worker, event, photo(), name="n" * 10_000 + ".jpg")  # past the form parser's 8 KB
    assert r.status_code == 400 and r.json()["parameter"] == "file" and "8 KB" in r.json()["detail"]
    r = _upload(client, worker, event, photo(), name="n" * 4_000 + ".jpg")
    assert r.status_code == 201 and len(r.json()["filename"]) == 200 and r.json()["filename"].endswith(".jpg")
    got = client.get(r.json()["href"], headers=people["operator"])
    assert got.headers["content-disposition"].startswith('inline; filename="nnn')


def test_missing_parts_and_other_bodies_are_refused(client, people, event):
    worker = people["worker-A1"]
    url = f"/events/{event}/attachments"
    r = client.post(url, data={"note": "no file"}, files={"other": ("x.jpg", photo(), "image/jpeg")}, headers=worker)
    assert r.status_code == 400 and r.json()["parameter"] == "file"
    r = client.post(url, files=[("file", ("a.jpg", photo(), "image/jpeg")), ("file", ("b.jpg", photo(), "image/jpeg"))],
                    headers=worker)
    assert r.status_code == 400 and r.json()["parameter"] == "file"
    r = client.post(url, content=photo(), headers={**worker, "Content-Type": "image/jpeg"})
    assert r.status_code == 415 and r.json()["parameter"] == "Content-Type"
    r = client.post(url, json={"file": "aGVsbG8="}, headers=worker)
    assert r.status_code == 415
    r = client.post(url, content=b"--x\r\nbroken", headers={**worker, "Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400
    r = _upload(client, worker, event, photo(), note="n" * 5000)
    assert r.status_code == 400 and r.json()["parameter"] == "note"
    assert client.get(url, headers=worker).json()["attachments"] == []


def test_attachments_exist_only_for_those_who_may_read_the_event(client, people, event):
    meta = _upload(client, people["worker-A1"], event, photo()).json()
    for who in ("leader-B",):  # another township: the event, its list and its bytes do not exist
        assert client.get(f"/events/{event}/attachments", headers=people[who]).status_code == 404
        assert client.get(meta["href"], headers=people[who]).status_code == 404
        r = _upload(client, people[who], event, photo())
        assert r.status_code == 404
    assert client.get(meta["href"]).status_code == 404  # anonymous
    assert client.get(meta["href"], headers=people["leader-A"]).status_code == 200
    other = client.app.state.store.insert("events", [Feature(None, Point(100.8, 33.3), {
        "title": "elsewhere", "type": "other", "status": "reported", "reported_at": datetime.now(UTC)})],
        Scope.everything())[0].id
    assert client.get(f"/events/{other}/attachments/{meta['id']}", headers=people["admin"]).status_code == 404
    for path in ("/events/999999/attachments", "/events/abc/attachments", f"/events/{event}/attachments/0",
                 f"/events/{event}/attachments/99999999999999999999", f"/events/{event}/attachments/x"):
        assert client.get(path, headers=people["admin"]).status_code == 404, path
    assert _upload(client, people["admin"], 999999, photo()).status_code == 404


def test_a_finished_event_takes_no_more_files(client, people, event):
    assert client.post(f"/events/{event}/actions/reject", json={}, headers=people["operator"]).status_code == 200
    r = _upload(client, people["worker-A1"], event, photo())
    assert r.status_code == 409 and "rejected" in r.json()["detail"]


def test_an_upload_retried_with_the_same_idempotency_key_is_stored_once(client, people, event):
    worker = people["worker-A1"]
    jpeg = photo()
    first = _upload(client, worker, event, jpeg, **{"Idempotency-Key": "photo-1"})
    again = _upload(client, worker, event, jpeg, **{"Idempotency-Key": "photo-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = _upload(client, worker, event, photo("PNG"), name="p.png", **{"Idempotency-Key": "photo-1"})
    assert other.status_code == 422
    assert len(client.get(f"/events/{event}/attachments", headers=worker).json()["attachments"]) == 1


def test_concurrent_uploads_to_one_event_are_all_stored_and_counted(client, people, event):
    worker = people["worker-A1"]
    images = [photo(size=8 + i) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda b: _upload(client, worker, event, b), images))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    listed = client.get(f"/events/{event}/attachments", headers=worker).json()["attachments"]
    assert sorted(a["sha256"] for a in listed) == sorted(hashlib.sha256(b).hexdigest() for b in images)
    assert client.get(f"{ITEMS}/{event}", headers=worker).json()["properties"]["attachment_count"] == 6
    timeline = client.get(f"/events/{event}/timeline", headers=worker).json()["timeline"]
    assert [t["action"] for t in timeline] == ["attach"] * 6


def test_an_action_links_uploaded_photos_to_its_timeline_row(client, people, event):
    op, worker = people["operator"], people["worker-A1"]
    for action, body in (("accept", {}), ("dispatch", {"assignee": "worker-A1"})):
        assert client.post(f"/events/{event}/actions/{action}", json=body, headers=op).status_code == 200
    assert client.post(f"/events/{event}/actions/start", json={}, headers=worker).status_code == 200
    ids = [_upload(client, worker, event, photo(size=10 + i)).json()["id"] for i in range(2)]
    foreign = _upload(client, op, client.app.state.store.insert("events", [Feature(None, Point(100.3, 33.2), {
        "title": "other", "type": "other", "status": "reported", "reported_at": datetime.now(UTC)})],
        Scope.everything())[0].id, photo()).json()["id"]
    for bad in ([foreign], "all", [], [ids[0], ids[0]], [True], [0], list(range(1, 30))):
        r = client.post(f"/events/{event}/actions/handle", json={"attachments": bad}, headers=worker)
        assert r.status_code == 400 and r.json()["parameter"] == "attachments", (bad, r.text)
    r = client.post(f"/events/{event}/actions/handle", json={"note": "fixed", "attachments": ids}, headers=worker)
    assert r.status_code == 200 and r.json()["properties"]["status"] == "handled"
    step = client.get(f"/events/{event}/timeline", headers=op).json()["timeline"][-1]
    assert step["action"] == "handle" and step["data"]["attachments"] == ids
    listed = client.get(f"/events/{event}/attachments", headers=op).json()["attachments"]
    assert [a["action"] for a in listed] == ["handle", "handle"]
    r = client.post(f"/events/{event}/actions/rework", json={"attachments": ids[:1]}, headers=op)
    assert r.status_code == 400 and "already" in r.json()["detail"]  # linked once
