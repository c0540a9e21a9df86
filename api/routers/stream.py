"""GET /stream (Server-Sent Events of the change log, scoped) and POST /stream/tickets (for browsers)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import check_version, get_principal, issue_ticket, principal_from_ticket
from api.stream import Subscriber
from geoserver.access import Principal, readable_layers
from geoserver.errors import BadInput, Unauthorized

router = APIRouter(tags=["Live stream"])
AUDIENCE = "onemap-stream"
TICKET_SECONDS = 60
MAX_SEQ = 2**63 - 1


@router.post("/stream/tickets")
def stream_ticket(request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """A one-minute ticket to open /stream as yourself from a browser (`EventSource('/stream?ticket=…')`),
    so the long-lived token never appears in a URL."""
    if principal.is_anonymous:
        raise Unauthorized("log in to ask for a stream ticket", parameter="Authorization")
    states = request.app.state.account_states
    if states.current(principal.username) is None:
        states.load(principal.username)  # (this route runs in a worker thread)
    state = states.current(principal.username)  # None for an identity provider's user without an account
    ticket = issue_ticket(request.app.state.settings, principal, AUDIENCE, TICKET_SECONDS,
                          state.version if state is not None else None)
    return {"ticket": ticket, "expires_in": TICKET_SECONDS}


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}})
async def stream(
    request: Request,
    layers: str | None = Query(None, description="comma-separated layer ids (default: every readable layer)"),
    ticket: str | None = Query(None, description="a ticket from POST /stream/tickets"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    principal: Principal = Depends(get_principal),
) -> StreamingResponse:
    """Every committed change the caller may see, live: `id` is the change-log seq, `event` is `change`
    (data: seq, layer, id, op insert/update/delete/load, properties, township_code, bbox, at), `ready` once
    caught up, or `reset` (reload: what was missed is no longer in the log). Reconnect with Last-Event-ID."""
    if ticket is not None:
        principal, version = principal_from_ticket(request.app.state.settings, ticket, AUDIENCE, "ticket")
        if version is not None:  # a ticket stops with its account, like a token
            await check_version(request, principal.username, version, "ticket")
    readable = dict((layer.id, scope) for layer, scope in readable_layers(principal, request.app.state.catalog))
    if layers is not None:
        wanted = [name.strip() for name in layers.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in readable]
        if unknown or not wanted:
            raise BadInput(f"layers: unknown or unreadable layer(s) {', '.join(unknown) or '(none given)'}; "
                           f"readable: {', '.join(readable)}", parameter="layers")
        readable = {name: readable[name] for name in wanted}
    last = _last_event_id(last_event_id or request.query_params.get("lastEventId"))
    sub = Subscriber(principal, readable)
    hub = request.app.state.stream
    return StreamingResponse(hub.events(sub, last), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        seq = int(value.strip())
    except ValueError:
        raise BadInput("Last-Event-ID must be a change-log seq (a whole number)", parameter="Last-Event-ID") from None
    if not 0 <= seq <= MAX_SEQ:
        raise BadInput(f"Last-Event-ID must be between 0 and {MAX_SEQ}", parameter="Last-Event-ID")
    return seq
