"""The limit for cached tiles: a bare Starlette app on the same uvicorn that answers fixed bytes on any path."""

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = bytes(range(256)) * 56  # 14 KB, about a cached tile of the sample county


async def tile(request) -> Response:
    """The same 14 KB, whatever was asked."""
    return Response(BODY, media_type="application/vnd.mapbox-vector-tile")


app = Starlette(routes=[Route("/{path:path}", tile)])
