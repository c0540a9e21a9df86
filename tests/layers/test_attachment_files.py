"""What an uploaded file is: its kind from its bytes, a safe name, and a photo's EXIF position."""

from __future__ import annotations

import pytest

from geoserver.errors import UnsupportedMediaType
from layers.attachment_files import clean_name, exif_position, sniff
from tests.api.test_event_attachments import PDF, photo


@pytest.mark.parametrize("name, kind, stored", [
    ("a\x00b\r\nc.jpg", "image/jpeg", "abc.jpg"), ("../../x.pdf", "application/pdf", "x.pdf"),
    ("photo.png", "image/jpeg", "photo.png.jpg"), ("IMG.jpeg", "image/jpeg", "IMG.jpeg"),
    ("  .hidden  ", "image/png", "hidden.png"), (None, "image/webp", "attachment.webp"),
    ("x" * 500, "application/pdf", "x" * 196 + ".pdf"), ("\u202eevil\u202d.jpg", "image/jpeg", "evil.jpg"),
])
def test_names_are_cleaned_and_say_what_the_bytes_are(name, kind, stored):
    assert clean_name(name, kind) == stored


def test_kinds_come_from_the_bytes():
    assert sniff(photo("JPEG")) == "image/jpeg" and sniff(photo("PNG")) == "image/png"
    assert sniff(photo("WEBP")) == "image/webp" and sniff(PDF) == "application/pdf"
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") == "image/heic"
    assert sniff(b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf") == "image/heif"
    for bad in (b"hello", b"\x89PNG\r\n\x1a\n broken", b"RIFF\x00\x00\x00\x00WEBPVP8 junk", b"\x00\x00\x00\x18ftypisom"):
        with pytest.raises(UnsupportedMediaType):
            sniff(bad)


def test_a_photo_s_exif_position_is_read_and_an_absent_or_absurd_one_is_none():
    where = exif_position(photo(gps=(100.25, 33.125)), "image/jpeg")
    assert (where.lon, where.lat) == (pytest.approx(100.25, abs=1e-5), pytest.approx(33.125, abs=1e-5))
    assert exif_position(photo(), "image/jpeg") is None
    assert exif_position(photo(gps=(0.0, 0.0)), "image/jpeg") is None  # null island: a phone without a fix
    assert exif_position(PDF, "application/pdf") is None
