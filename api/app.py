"""The FastAPI app factory: settings in, an app out; the lifespan opens the store and keeps it on app.state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.bodies import BodyLimit
from api.errors import add_exception_handlers
from api.features import FeaturesFactory
from api.html import mount_static
from api.links import LinkBase
from api.ogc_service import OGCService
from api.routers import (
    accounts,
    attachments,
    auth,
    basemaps,
    events,
    health,
    login,
    moving_features,
    open311,
    patrol_stats,
    patrols,
    readings,
    stream,
    tasks,
)
from api.routers import heatmap as heatmap_routes
from api.routers.alarms import router as alarms_router
from api.routers.devices import router as devices_router
from api.routers.docs import mount_swagger
from api.routers.docs import router as docs_router
from api.routers.glyphs import router as glyphs_router
from api.routers.search import router as search_router
from api.routers.tiles import TilesFactory
from api.routers.tiles3d import Tiles3DFactory, mount_cesium
from api.routers.viewer import mount_viewer
from api.routers.viewer import router as viewer_router
from api.settings import Settings
from api.stream import StreamHub
from api.tile_hits import TileHits
from basemaps.rendered import RenderedTiles
from basemaps.sources import RasterRegistry
from geoserver import jobs
from geoserver.account_states import AccountStates
from geoserver.extents import ExtentCache
from geoserver.jobs import JobRunner
from geoserver.store import open_store
from layers import alarm_eval, dispatch, patrol_work, routing
from layers.catalog import build_catalog
from layers.readings_mqtt import Broker, ReadingsConsumer, default_client_id
from tiles.cache import TileCache
from tiles.service import TileService
from tiles.white_model import WhiteModelService

log = logging.getLogger("onemap")
FORM_OVERHEAD = 64 * 1024  # a multipart upload's boundaries, part headers and note around the file


class OneMapAPI(FastAPI):
    """FastAPI whose requests meet api/tile_hits.py first, before the framework and its middleware: a map's
    tile requests (nearly all answered from memory) skip the error, telemetry and body-limit layers, which cost
    as much again as the lookup itself; everything else goes on to FastAPI unchanged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tiles_first = TileHits(super().__call__)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        scope["app"] = self
        await self._tiles_first(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    """A new app serving the catalog from the store named in `settings`."""
    catalog = build_catalog()
    routing.configure(settings.border_flag_metres)  # a bad value stops the start, naming the setting

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every COG opened once: a missing or corrupt one stops the start, naming the file.
        app.state.rasters = RasterRegistry.build(settings.sample_dir, settings.rasters)
        store = open_store(settings.database, catalog)
        store.open()  # a broken store is reported at start, clearly, not on every request
        await store.open_async()
        if settings.migrate_on_start:
            store.initialize()
        app.state.store = store
        # Consumers of the change log (this process's feed): extents, tiles, the white model, the stream.
        app.state.extents = extents = ExtentCache(store)
        app.state.ogc = OGCService(settings, catalog, store, extents)
        app.state.tiles = TileService(store, catalog, TileCache(settings.tile_cache_mb, settings.tile_cache_dir),
                                      extents=extents)
        app.state.rendered_rasters = RenderedTiles(settings.raster_cache_mb)
        app.state.account_states = AccountStates(store)
        stop_following_accounts = store.changes.subscribe(app.state.account_states.on_change)
        app.state.white_model = WhiteModelService(store, catalog)
        app.state.stream = StreamHub(store, asyncio.get_running_loop(),
                                     heartbeat=settings.stream_heartbeat_seconds)
        store.changes.start()  # other processes' writes
        background = [
            jobs.purge_idempotency_keys(hours=24), jobs.purge_changes(hours=settings.change_retention_hours),
            dispatch.deadline_job(), patrol_work.auto_close_job(settings.patrol_silence_minutes),
            alarm_eval.clock_job()]
        app.state.mqtt = None
        if settings.mqtt_url:  # one consumer per county: whichever process holds the job's lease runs it
            broker = Broker.from_url(settings.mqtt_url, ca_file=settings.mqtt_ca_file,
                                     client_id=settings.mqtt_client_id or default_client_id(settings.database))
            app.state.mqtt = ReadingsConsumer(store, catalog, broker)
            background.append(app.state.mqtt.job())
        app.state.jobs = JobRunner(store, background)
        if settings.jobs:
            app.state.jobs.start()
        log.info("serving %d layers from %s store %s", len(catalog), store.kind, settings.database)
        try:
            yield
        finally:
            stop_following_accounts()
            app.state.jobs.stop()
            store.changes.stop()
            app.state.stream.close()
            app.state.tiles.close()
            app.state.white_model.close()
            extents.close()
            await store.close_async()
            store.close()

    # Our own OpenAPI document and Swagger UI (api/routers/docs.py), not FastAPI's CDN-backed pages.
    app = OneMapAPI(title="onemap", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.links = LinkBase(settings)
    app.state.catalog = catalog
    add_exception_handlers(app)
    max_bytes = int(settings.max_body_mb * 1024 * 1024)
    # Patrol uploads carry a day of GPS fixes, attachments a photo: they keep their own, larger limits.
    app.add_middleware(BodyLimit, max_bytes=max_bytes, larger={
        "/patrols/{patrol_id}/points": max(max_bytes, patrols.MAX_UPLOAD),
        "/events/{event_id}/attachments": (settings.max_attachment_bytes + FORM_OVERHEAD,
                                           f"the file is larger than the {settings.max_attachment_mb:g} MB an "
                                           f"attachment may have (ONEMAP_MAX_ATTACHMENT_MB)")})
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(stream.router)
    app.include_router(login.router)
    app.include_router(events.router)
    app.include_router(attachments.router)
    app.include_router(open311.router)
    app.include_router(readings.router)
    app.include_router(heatmap_routes.router)
    app.include_router(alarms_router)
    app.include_router(patrols.router)
    app.include_router(tasks.router)
    app.include_router(patrol_stats.router)
    app.include_router(devices_router)
    app.include_router(accounts.router)
    app.include_router(basemaps.router)
    app.include_router(moving_features.router)
    app.include_router(FeaturesFactory(alternates={"patrols": {"mfjson": moving_features.feature_response}}).router)
    app.include_router(TilesFactory().router)
    app.include_router(Tiles3DFactory().router)
    app.include_router(glyphs_router)
    app.include_router(search_router)
    app.include_router(viewer_router)
    app.include_router(docs_router)
    mount_cesium(app)
    mount_viewer(app)
    mount_static(app)
    mount_swagger(app)
    return app


def create_app_from_env() -> FastAPI:
    """The app configured from ONEMAP_* variables (what each `onemap serve --workers N` process runs)."""
    return create_app(Settings.from_env())
