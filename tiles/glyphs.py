"""Label glyphs for MapLibre: signed-distance-field PBF ranges of 256 code points, drawn from a system font.

MapLibre asks for `{fontstack}/{start}-{end}.pbf`. The viewer draws Chinese itself with the browser's local
font (`localIdeographFontFamily`), so in practice only Latin, digits and punctuation come from here; any other
range is drawn on request from the same font, once, and kept.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

# Debian packages: fonts-wqy-microhei (scripts/system-deps.sh) has Latin and CJK; DejaVu comes with most systems.
FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)
FONTSTACK = "Sans Regular"
SIZE = 24  # pixels, as MapLibre expects of server glyphs
BUFFER = 3  # pixels of SDF around each glyph
RADIUS = 8.0
CUTOFF = 0.25
RANGE = 256
MAX_CODEPOINT = 0xFFFF


class GlyphsUnavailable(RuntimeError):
    """No usable font file on this machine."""


def font_file() -> Path:
    """The first font of FONT_FILES that exists; GlyphsUnavailable when none does."""
    for path in FONT_FILES:
        if path.is_file():
            return path
    raise GlyphsUnavailable("no font for map labels: install fonts-wqy-microhei (scripts/system-deps.sh)")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 0:
        return key + _varint(int(payload))
    return key + _varint(len(payload)) + payload


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 31)


def _sdf(alpha: np.ndarray) -> np.ndarray:
    """The SDF bytes (MapLibre's encoding: 192 on the outline, falling outwards) of an 8-bit coverage bitmap."""
    h, w = alpha.shape
    padded = np.zeros((h + 2 * BUFFER, w + 2 * BUFFER), dtype=np.float64)
    padded[BUFFER:BUFFER + h, BUFFER:BUFFER + w] = alpha / 255.0
    inside = padded >= 0.5
    ys, xs = np.mgrid[0:padded.shape[0], 0:padded.shape[1]]
    pts = np.column_stack((ys.ravel(), xs.ravel())).astype(np.float64)

    def nearest(mask: np.ndarray) -> np.ndarray:
        targets = np.column_stack(np.nonzero(mask)).astype(np.float64)
        if not len(targets):
            return np.full(len(pts), RADIUS * 2)
        d = np.full(len(pts), np.inf)
        for chunk in np.array_split(targets, max(1, len(targets) // 512)):
            d = np.minimum(d, np.sqrt(((pts[:, None, :] - chunk[None, :, :]) ** 2).sum(-1)).min(axis=1))
        return d

    # Signed distance, positive outside: to the nearest inside pixel, minus to the nearest outside pixel.
    dist = (nearest(inside) - nearest(~inside)).reshape(padded.shape)
    dist = dist - np.sign(dist) * 0.5
    return np.clip(np.round(255 - 255 * (dist / RADIUS + CUTOFF)), 0, 255).astype(np.uint8)


class GlyphRanges:
    """Glyph PBF ranges of one font, drawn on first request and kept (a range is a few tens of KB)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._face = None

    def _open(self):
        import freetype  # the wheel bundles FreeType itself

        if self._face is None:
            self._face = freetype.Face(str(self.path or font_file()))
            self._face.set_pixel_sizes(0, SIZE)
        return self._face

    @lru_cache(maxsize=64)  # noqa: B019 -- one instance per app, ranges are few
    def range(self, start: int) -> bytes:
        """The PBF of code points start..start+255 (start a multiple of 256, at most U+FFFF)."""
        if start % RANGE or not 0 <= start <= MAX_CODEPOINT:
            raise ValueError(f"a glyph range starts at a multiple of {RANGE} up to {MAX_CODEPOINT}")
        import freetype

        glyphs = bytearray()
        with self._lock:  # a FreeType face is not thread-safe
            face = self._open()
            ascender = face.size.ascender >> 6
            for cp in range(start, start + RANGE):
                if face.get_char_index(cp) == 0:
                    continue
                face.load_char(cp, freetype.FT_LOAD_RENDER | freetype.FT_LOAD_NO_HINTING)
                g = face.glyph
                bm = g.bitmap
                w, h = bm.width, bm.rows
                msg = _field(1, 0, cp)
                if w and h:
                    alpha = np.array(bm.buffer, dtype=np.uint8).reshape(h, bm.pitch)[:, :w]
                    msg += _field(2, 2, _sdf(alpha).tobytes())
                msg += _field(3, 0, w) + _field(4, 0, h)
                msg += _field(5, 0, _zigzag(g.bitmap_left)) + _field(6, 0, _zigzag(g.bitmap_top - ascender))
                msg += _field(7, 0, max(0, round(g.advance.x / 64)))
                glyphs += _field(3, 2, msg)
        stack = _field(1, 2, FONTSTACK.encode()) + _field(2, 2, f"{start}-{start + RANGE - 1}".encode()) + glyphs
        return _field(1, 2, stack)
