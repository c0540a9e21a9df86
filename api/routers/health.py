"""GET /healthz: proves the store answers."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> dict:
    """The store's own health report; 503 problem+json saying what is wrong when it does not answer.

    While the database is down that answer comes at once, with Retry-After.
    """
    report = request.app.state.store.health()
    return {"status": "ok", **report}
