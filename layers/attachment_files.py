"""What an uploaded file is: its kind from its bytes (never from its name or declared type), a safe name, and
the position a photo's EXIF says it was taken at (kept as a property, never used for routing)."""

from __future__ import annotations

import io
import math
import re
import unicodedata
import warnings
from dataclasses import dataclass

from geoserver.errors import UnsupportedMediaType

MAX_NAME = 200
KINDS = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif", "application/pdf")
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/heic": ".heic",
              "image/heif": ".heif", "application/pdf": ".pdf"}
# ISO base media brands of HEIC (HEVC-coded) and other HEIF images.
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_DECODED = ("image/jpeg", "image/png", "image/webp")  # Pillow reads these without plug-ins


def sniff(content: bytes) -> str:
    """The media type the bytes are (JPEG, PNG, WebP, HEIC/HEIF, PDF); UnsupportedMediaType otherwise."""
    kind = _magic(content)
    if kind is None:
        raise UnsupportedMediaType(f"file: the bytes are none of the kinds taken ({', '.join(KINDS)})",
                                   parameter="file")
    if kind in _DECODED and not _readable(content):
        raise UnsupportedMediaType(f"file: the bytes start like {kind} but are not a readable image",
                                   parameter="file")
    return kind


def _magic(content: bytes) -> str | None:
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp":
        brands = {content[8:12]} | {content[i:i + 4] for i in range(16, min(len(content), 64), 4)}
        if brands & _HEIC_BRANDS:
            return "image/heic"
        if brands & _HEIF_BRANDS:
            return "image/heif"
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _readable(content: bytes) -> bool:
    from PIL import Image  # imported on the first upload, not at server start

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                image.verify()
        return True
    except Exception:  # Pillow raises many kinds for a damaged file; all mean "not an image"
        return False


@dataclass(frozen=True)
class Position:
    """Where a photo says it was taken (EXIF GPS), WGS 84 lon/lat."""

    lon: float
    lat: float


def exif_position(content: bytes, kind: str) -> Position | None:
    """The EXIF GPS position of a JPEG, PNG or WebP photo, or None (none, or not a sane one)."""
    if kind not in _DECODED:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(content)) as image:
            gps = image.getexif().get_ifd(0x8825)
    except Exception:
        return None
    try:
        lat = _degrees(gps[2], gps.get(1, "N"), "S")
        lon = _degrees(gps[4], gps.get(3, "E"), "W")
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None
    return Position(round(lon, 7), round(lat, 7))


def _degrees(dms, ref, negative: str) -> float | None:
    d, m, s = (float(v) for v in dms)
    value = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if not math.isfinite(value):
        return None
    return -value if str(ref).strip().upper().startswith(negative) else value


def clean_name(name: str | None, kind: str) -> str:
    """A file name safe to store and show: no folders, no control characters, at most MAX_NAME characters
    (the extension kept), and an extension that says what the bytes are."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = base.strip().strip(".").strip()
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    wanted = EXTENSIONS[kind]
    if "." + ext.lower() not in (wanted, ".jpeg" if kind == "image/jpeg" else wanted):
        stem, ext = base, wanted[1:]
    stem = stem[: MAX_NAME - len(ext) - 1].rstrip() or "attachment"
    return f"{stem}.{ext}"
