"""Patrol statistics over HTTP (`GET /stats/patrols`). Parse, call layers/patrol_stats, serialise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from geoserver.access import Principal
from geoserver.errors import BadInput
from layers import patrol_stats

router = APIRouter(tags=["Patrols"])
PARAMS = ("day", "group_by")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"day must be a local date YYYY-MM-DD or a range a/b of them; got {text[:40]!r}",
                       parameter="day") from None


def parse_days(raw: str | None) -> tuple[date, date]:
    """`day`: one local date, or `a/b` (both included); today in the county when absent."""
    if not raw:
        today = (datetime.now(UTC) + timedelta(hours=patrol_stats.LOCAL_HOURS)).date()
        return today, today
    if "/" in raw:
        a, _, b = raw.partition("/")
        return _date(a), _date(b)
    day = _date(raw)
    return day, day


@router.get("/stats/patrols", response_class=JSONResponse)
async def patrol_statistics(request: Request, principal: Principal = Depends(get_principal)) -> Response:
    """Patrol figures per worker-day, grouped by `group_by` (worker, grid_code, township_code, day;
    comma-separated, default `worker,day`) for `day` (a local date or a range a/b, at most 31 days; default
    today): online now and online rate, patrolled / not patrolled, mileage and duration against the daily
    targets (met / not met), stops with dwell times, and the share of the grid covered -- within your scope."""
    params = request.query_params
    for name in params:
        if name not in PARAMS:
            raise BadInput(f"unknown parameter {name[:40]!r}; this resource takes {', '.join(PARAMS)}",
                           parameter=name)
    first, last = parse_days(params.get("day"))
    group_by = tuple(g.strip() for g in (params.get("group_by") or "worker,day").split(",") if g.strip())
    settings = request.app.state.settings
    targets = patrol_stats.Targets(settings.patrol_target_km, settings.patrol_target_minutes, settings.online_minutes)
    app = request.app.state

    def build() -> bytes:  # a thousand workers' figures: written by orjson here, not walked by jsonable_encoder
        return orjson.dumps(patrol_stats.patrol_stats(app.store, app.catalog, principal, first, last, group_by,
                                                      targets))

    return Response(await run_in_threadpool(build), media_type="application/json")
