"""GET /fonts/{fontstack}/{range}.pbf: the label glyphs the style names (drawn from a system font, kept)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from geoserver.errors import BadInput, NotFound
from tiles.glyphs import RANGE, GlyphRanges, GlyphsUnavailable

router = APIRouter(tags=["tiles"])
PBF = "application/x-protobuf"
_RANGE = re.compile(r"(\d{1,5})-(\d{1,5})")


def _glyphs(request: Request) -> GlyphRanges:
    glyphs = getattr(request.app.state, "glyphs", None)
    if glyphs is None:  # one per app; two racing first requests at worst each build one
        glyphs = request.app.state.glyphs = GlyphRanges()
    return glyphs


@router.get("/fonts/{fontstack}/{glyph_range}.pbf", response_class=Response,
            responses={200: {"content": {PBF: {}}, "description": "256 glyphs as signed distance fields"}})
async def glyph_range(request: Request, fontstack: str, glyph_range: str) -> Response:
    """Glyphs `start-end` (256 code points, start a multiple of 256) for map labels; every font stack is
    drawn with the server's one label font."""
    if len(fontstack) > 256:
        raise BadInput("fontstack must be at most 256 characters", parameter="fontstack")
    m = _RANGE.fullmatch(glyph_range)
    start = int(m.group(1)) if m else -1
    if not m or start % RANGE or int(m.group(2)) != start + RANGE - 1 or start > 0xFFFF:
        raise BadInput(f"range must be start-end with start a multiple of {RANGE} up to 65280 and end = start+255, "
                       f"e.g. 0-255; got {glyph_range!r}", parameter="range")
    try:
        body = await run_in_threadpool(_glyphs(request).range, start)
    except GlyphsUnavailable as exc:
        raise NotFound(str(exc), parameter="fontstack") from None
    return Response(body, media_type=PBF, headers={"Cache-Control": "public, max-age=86400"})
