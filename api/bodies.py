"""Request bodies: one size limit for every route (checked while the body is read), and JSON with limits."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from geoserver import jsontext
from geoserver.errors import TooLarge


class BodyLimit:
    """ASGI middleware: a body over the limit is answered 413 problem+json, never buffered whole.

    A declared Content-Length over the limit is refused before the app runs. A body without one (chunked)
    is counted as it is read; past the limit the read fails and whatever the app would answer is replaced
    by the 413 (FastAPI turns a failed form read into its own 400). `larger` raises the limit on the few
    routes that take uploads: path templates (`/patrols/{id}/points`) and their own limits, or (limit, the
    detail its 413 gives, naming the setting).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int | tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(_template(path), *(limit if isinstance(limit, tuple) else (limit, None)))
                       for path, limit in (larger or {}).items()]

    def limit(self, path: str) -> int:
        """The most bytes a request body to `path` may have."""
        return self._rule(path)[0]

    def _rule(self, path: str) -> tuple[int, str | None]:
        return next(((limit, detail) for pattern, limit, detail in self.larger if pattern.match(path)),
                    (self.max_bytes, None))

    @staticmethod
    def _problem(limit: int, detail: str | None = None):
        return problem(413, detail or f"the request body is larger than this server accepts here "
                                      f"({limit / 2**20:g} MB)", parameter="body")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, detail = self._rule(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._problem(limit, detail)(scope, receive, send)
            return
        received = 0
        over = False
        answered = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise TooLarge("the request body is too large", parameter="body")
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if not over:
                await send(message)
            elif message["type"] == "http.response.start" and not answered:
                answered = True
                await self._problem(limit, detail)(scope, receive, send)

        await self.app(scope, counted, guarded)


def _template(path: str) -> re.Pattern[str]:
    """A route path template (`/patrols/{patrol_id}/points`) as a pattern matching its paths."""
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in re.split(r"\{\w+\}", path)) + "$")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_json(request: Request, parameter: str = "body") -> Any:
    """The request body as JSON (standard JSON only, nesting bounded); BadInput naming `parameter`."""
    return jsontext.load(await request.body(), parameter)
