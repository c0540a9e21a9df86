"""Request bodies and JSON answers: one size limit for every route (checked while the body is read), JSON bodies
with limits (gzip accepted), path ids, and the JSON response the workflow routes answer with."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from geoserver import jsontext
from geoserver.errors import BadInput, NotFound, TooLarge

MAX_JSON = 64 * 1024  # a workflow body (an action, a rule, a device); uploads name their own limit


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


async def json_body(request: Request, *, required: bool, limit: int = MAX_JSON) -> Any:
    """The JSON body of a workflow request: at most `limit` bytes (after gunzip when `Content-Encoding: gzip`),
    `application/json` (or no type), JSON nested within bounds; `{}` when empty and not `required`. BadInput
    naming the body, the Content-Type or the Content-Encoding otherwise. NaN and Infinity are let through to the
    workflow, which checks every number it takes and names the field (or refuses only the one bad reading)."""
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(f"the body must be at most {limit} bytes", parameter="body")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        inflate = zlib.decompressobj(wbits=31)
        try:
            raw = inflate.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise BadInput(f"the body is not valid gzip: {exc}", parameter="Content-Encoding") from None
        if len(raw) > limit or inflate.unconsumed_tail:
            raise TooLarge(f"the body must be at most {limit} bytes once unzipped", parameter="body")
    elif encoding not in ("identity", ""):
        raise BadInput(f"Content-Encoding must be gzip or identity; got {encoding[:64]!r}",
                       parameter="Content-Encoding")
    if not raw.strip():
        if required:
            raise BadInput("a JSON body is required", parameter="body")
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", ""):
        raise BadInput(f"Content-Type must be application/json; got {ctype[:64]!r}", parameter="Content-Type")
    return jsontext.load(raw, "body", nan=True)


def path_id(value: str, what: str, parameter: str) -> int:
    """A record id from the path: a positive 64-bit integer, else NotFound naming `what` (`no event 'x'`)."""
    try:
        number = int(value)
    except ValueError:
        raise NotFound(f"no {what} {value[:64]!r}", parameter=parameter) from None
    if not 0 < number < 2**63:
        raise NotFound(f"no {what} {value[:64]!r}", parameter=parameter)
    return number


def iso(value: Any) -> str:
    """A date or time as ISO 8601 (UTC written `Z`); anything else as its text."""
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)


def json_response(body: Any, status: int = 200, media_type: str = "application/json", **headers: str) -> Response:
    """`body` as compact UTF-8 JSON, times in ISO 8601."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=iso), status_code=status,
                    media_type=media_type, headers=headers)
