"""GET /search?q=…: one box over places, things, events and people, within the caller's scope."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth import get_principal
from geoserver.access import Principal
from geoserver.errors import BadInput
from layers import search as search_layer

router = APIRouter(tags=["search"])
PARAMS = {"q", "limit"}


@router.get("/search")
async def search(request: Request, principal: Principal = Depends(get_principal)) -> dict:
    """Townships, villages, grids, buildings, temples and sites by name or code, events by code and people
    (grid leaders) by name -- only what you may read; `limit` hits per kind (1-50, default 10)."""
    params = request.query_params
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise BadInput(f"unknown parameter {unknown[0]!r}; /search takes q and limit", parameter=unknown[0])
    raw = params.get("limit", "10")
    try:
        limit = int(raw)
    except ValueError:
        raise BadInput(f"limit must be a whole number between 1 and {search_layer.MAX_LIMIT}; got {raw!r}",
                       parameter="limit") from None
    results = await run_in_threadpool(search_layer.search, request.app.state.store, request.app.state.catalog,
                                      principal, params.get("q"), limit)
    return {"q": params.get("q"), "results": results}
