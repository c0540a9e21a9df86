"""Sensor readings in over HTTP, and the readings refused. Parse, call layers/, serialise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.bodies import json_body, json_response
from geoserver.access import Principal
from geoserver.errors import BadInput, TooManyRequests
from layers import ingest

router = APIRouter(tags=["Monitoring"])
MAX_BODY = 1024 * 1024  # a full batch of 1,000 readings is ~150 kB


class IngestGate:
    """Back-pressure for one process: at most `running` batches stored at once and `waiting` more in line;
    a batch beyond that is refused with 429 and Retry-After before anything is written."""

    def __init__(self, running: int, waiting: int) -> None:
        self.running = max(1, running)
        self.limit = self.running + max(0, waiting)
        self.admitted = 0
        self._slots: asyncio.Semaphore | None = None

    @asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        """Hold a slot while storing a batch; TooManyRequests when the line is full."""
        if self.admitted >= self.limit:
            raise TooManyRequests("readings arrive faster than they are stored; send this batch again later",
                                  retry_after=1, parameter="readings")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.running)
        self.admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self.admitted -= 1


def _gate(request: Request) -> IngestGate:
    gate = getattr(request.app.state, "ingest_gate", None)
    if gate is None:
        settings = request.app.state.settings
        gate = request.app.state.ingest_gate = IngestGate(settings.ingest_concurrency, settings.ingest_waiting)
    return gate


@router.post("/readings", responses={429: {"description": "This process stores as many batches as it can; send "
                                          "the batch again after Retry-After seconds (nothing of it was written)."}})
async def post_readings(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Send a batch of readings `{"readings": [{"site_id", "metric", "value", "unit", "observed_at"}]}` (at
    most 1,000); returns a line per reading: accepted (with its id), duplicate (already stored: its id) or
    rejected with the reason and field. 429 with Retry-After while this process stores as many as it can."""
    body = await json_body(request, required=True, limit=MAX_BODY)
    batch = ingest.batch_of(body)
    async with _gate(request).enter():
        report = await run_in_threadpool(ingest.ingest, request.app.state.store, request.app.state.catalog,
                                         principal, batch)
    return json_response(report.to_json())


@router.get("/readings/rejected")
def rejected_readings(request: Request, limit: str = "50", principal: Principal = Depends(get_principal)) -> dict:
    """How many readings were refused (by field at fault and by source) and the latest ones."""
    try:
        n = int(limit)
    except ValueError:
        raise BadInput("limit must be an integer", parameter="limit") from None
    return ingest.rejected_summary(request.app.state.store, request.app.state.catalog, principal, limit=n)
