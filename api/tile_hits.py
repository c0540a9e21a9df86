"""Vector tiles answered before routing: the hot path of a map client, a dictionary lookup end to end.

A map sends dozens of tile requests a second, nearly all for tiles already in memory. Through FastAPI each one
would pay route matching over every route, dependency solving and a JWT check before the lookup. This ASGI
layer, which the app runs before FastAPI and its middleware (api/app.py, OneMapAPI), recognises the two tile
paths itself, takes the caller from a bearer token this process has already
verified (or the session cookie's, or nobody), and answers a memory hit at once with exactly the headers the tile
route sends. A miss is built here too, by the same TileService the route calls: on the event loop where the store
can (PostGIS, over connections of the loop's own; the hand-over to a worker thread and back was the largest
piece of onemap's own time per tile after parsing), else in the thread pool (routing and dependencies were ~40 %
of the event loop's time per uncached tile). Anything else -- a query string, Basic or
API-key credentials, a token or account this process has not verified yet, a bad address, a tile whose build
failed -- goes on to the app unchanged, which answers it (and errors) as before.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.auth import VERIFIED_TOKENS
from api.routers.tiles import tile_answer
from api.session import COOKIE
from geoserver.access import Principal
from tiles.service import TileJob

_TILE = re.compile(r"^/(?:collections/(?P<layer>[A-Za-z0-9_]+)/)?tiles/(?P<tms>[A-Za-z0-9]+)"
                   r"/(?P<z>\d{1,2})/(?P<row>\d{1,8})/(?P<col>\d{1,8})$")


class TileHits:
    """Answers GET/HEAD of a tile without entering the app (from memory, or built); the rest passes through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["query_string"]:
            return await self.app(scope, receive, send)
        match = _TILE.match(scope["path"])
        try:
            answer = match and self._answer(scope, match)
        except Exception:  # noqa: BLE001 -- e.g. no lifespan yet: the app answers, as for any other request
            answer = None
        if not answer:
            return await self.app(scope, receive, send)
        if isinstance(answer, TileJob):  # a miss: built as the route builds it, on the loop or in a thread
            tiles = scope["app"].state.tiles
            try:
                result = await tiles.render_async(answer) or await run_in_threadpool(tiles.render, answer)
            except Exception:  # noqa: BLE001 -- the app builds it again and answers (and logs) what went wrong
                return await self.app(scope, receive, send)
            inm = dict(scope["headers"]).get(b"if-none-match")
            answer = tile_answer(result, inm.decode("latin-1") if inm else None)
        status, headers, body = answer
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if status not in (204, 304):
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})

    def _answer(self, scope: dict, match: re.Match) -> tuple[int, dict[str, str], bytes] | TileJob | None:
        """A hit's answer, the job of a miss to build, or None for the app to answer."""
        state = scope["app"].state
        headers = dict(scope["headers"])
        principal = _caller(state, headers)
        if principal is None:
            return None
        try:
            job = state.tiles.prepare(principal, match["layer"], match["tms"], int(match["z"]), int(match["col"]),
                                      int(match["row"]))
        except Exception:  # noqa: BLE001 -- any refusal is the app's to answer, with its problem document
            return None
        result = state.tiles.cached(job)
        if result is None:
            return job
        inm = headers.get(b"if-none-match")
        return tile_answer(result, inm.decode("latin-1") if inm else None)


def _caller(state: Any, headers: dict[bytes, bytes]) -> Principal | None:
    """The caller when this process can name it from memory alone; None to let the app decide."""
    if b"x-api-key" in headers:
        return None
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return _known(state, token.strip())
    cookie = headers.get(b"cookie")
    if cookie is not None:
        jar = SimpleCookie()
        try:
            jar.load(cookie.decode("latin-1"))
        except Exception:  # noqa: BLE001 -- a cookie header we cannot read: the app's to judge
            return None
        if COOKIE in jar:
            return _known(state, jar[COOKIE].value)
    return Principal.anonymous()


def _known(state: Any, token: str) -> Principal | None:
    """The principal of a token already verified here whose account still stands at its version."""
    hit = VERIFIED_TOKENS.get(state.settings.secret, token)
    if hit is None or hit[1] is None:
        return None
    principal, version = hit
    return principal if state.account_states.verdict(principal.username, version) else None
