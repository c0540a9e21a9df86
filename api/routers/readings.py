"""Sensor readings in over HTTP, and the readings refused. Parse, call layers/, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from api.routers.events import _dumps, _json_body
from geoserver.access import Principal
from geoserver.errors import BadInput
from layers import ingest

router = APIRouter(tags=["Monitoring"])
MAX_BODY = 1024 * 1024  # a full batch of 1,000 readings is ~150 kB


@router.post("/readings")
async def post_readings(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Send a batch of readings `{"readings": [{"site_id", "metric", "value", "unit", "observed_at"}]}` (at
    most 1,000); returns a line per reading: accepted (with its id) or rejected with the reason and field."""
    body = await _json_body(request, required=True, max_body=MAX_BODY)
    batch = ingest.batch_of(body)
    report = await run_in_threadpool(ingest.ingest, request.app.state.store, request.app.state.catalog,
                                     principal, batch)
    return _dumps(report.to_json())


@router.get("/readings/rejected")
def rejected_readings(request: Request, limit: str = "50", principal: Principal = Depends(get_principal)) -> dict:
    """How many readings were refused (by field at fault and by source) and the latest ones."""
    try:
        n = int(limit)
    except ValueError:
        raise BadInput("limit must be an integer", parameter="limit") from None
    return ingest.rejected_summary(request.app.state.store, request.app.state.catalog, principal, limit=n)
