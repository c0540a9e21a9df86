"""Scoped tiles: the caller's read scope on every layer, the cache keyed by it, invalidated by store writes."""

from __future__ import annotations

from dataclasses import dataclass

from geoserver.access import Principal, Scope, read_scope, readable_layers
from geoserver.catalog import Catalog, Layer
from geoserver.errors import NotFound
from geoserver.extents import ExtentCache
from geoserver.store import Store
from geoserver.vectortile import TileFilter, TileRequest
from tiles.cache import TileCache, TileKey
from tiles.heatmap import HEATMAP, TILE_LAYER, HeatmapTiles
from tiles.plan import TilePlan
from tiles.tms import get_tiling

STATIC_MAX_AGE = 3600
LIVE_MAX_AGE = 5
MAX_PLANS = 20_000  # (principal, layer, TMS, zoom) plans kept


@dataclass(frozen=True)
class TileResult:
    """Tile bytes (b'' when empty), their strong ETag and how long clients may keep them."""

    content: bytes
    etag: str
    max_age: int
    public: bool

    @property
    def empty(self) -> bool:
        """True when no feature fell in the tile."""
        return not self.content

    @property
    def cache_control(self) -> str:
        """The Cache-Control value: short for live layers, private unless every layer is public."""
        return f"{'public' if self.public else 'private'}, max-age={self.max_age}"


class TileService:
    """Builds single-layer and combined tiles for a principal through the store and the cache."""

    def __init__(self, store: Store, catalog: Catalog, cache: TileCache, plan: TilePlan | None = None,
                 extents: ExtentCache | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.cache = cache
        self.extents = extents or ExtentCache(store)
        self.plan = plan or TilePlan(catalog)
        cache.margin = max(cache.margin, self.plan.invalidation_margin())
        self.heat = HeatmapTiles(store, catalog, self.extents)
        self._unsubscribe = store.changes.subscribe(cache.on_change)
        self._unsubscribe_heat = store.changes.subscribe(self.heat.invalidator(cache))
        self._plans: dict[tuple, tuple] = {}

    def close(self) -> None:
        """Stop listening to the store's changes."""
        self._unsubscribe()
        self._unsubscribe_heat()
        self.extents.close()

    def readable(self, principal: Principal, layer_ids: tuple[str, ...] | None = None) -> list[tuple[Layer, Scope]]:
        """The layers (all, or those named) the principal may read at all, with their scopes."""
        layers = [lyr for lyr in self.catalog if layer_ids is None or lyr.id in layer_ids]
        return readable_layers(principal, layers)

    def layer(self, principal: Principal, layer_id: str) -> tuple[Layer, Scope]:
        """One readable layer and its scope; NotFound when it does not exist for this caller."""
        layer = self.catalog.get(layer_id)
        return layer, read_scope(principal, layer)

    def tile_layers(self, principal: Principal) -> list[Layer]:
        """The tile layers of the combined tiles for the principal: readable layers, then the heat map's."""
        layers = [lyr for lyr, _ in self.readable(principal)]
        return layers + [TILE_LAYER] if self.heat.sources(principal) else layers

    def prepare(self, principal: Principal, layer_id: str | None, tms_id: str, z: int, x: int, y: int, *,
                heatmap: bool = False, where: TileFilter | None = None) -> TileJob:
        """Check the address and the caller's access and work out what the tile holds (no store access).

        `layer_id` None asks for the combined tile of every layer the principal may read (and the heat map);
        `heatmap` for the heat map's tile alone (NotFound when the caller reads no layer it counts); `where`
        keeps only the features of one layer matching a filter and/or datetime.
        """
        drawn, heat, ids, scopes, max_age, public = self._plan(principal, layer_id, tms_id, z, heatmap)
        get_tiling(tms_id).check(z, x, y)
        key = TileKey(ids, tms_id, z, x, y, scopes, where.cache_key() if where else "")
        return TileJob(drawn, key, max_age, public, heat, where)

    def _plan(self, principal: Principal, layer_id: str | None, tms_id: str, z: int, heatmap: bool) -> tuple:
        """What a principal's tiles hold at a zoom: worked out once per (principal, layer, TMS, zoom, heat map).

        Scopes follow from the principal and the catalog alone (neither changes while the process runs; a
        changed account is a new principal), so each tile request is a dictionary lookup here. NotFound for an
        unreadable layer is raised, never remembered.
        """
        memo = (principal, layer_id, tms_id, z, heatmap)
        plan = self._plans.get(memo)
        if plan is not None:
            return plan
        heat: tuple[tuple[Layer, Scope], ...] = ()
        if heatmap:
            layers, heat = [], self.heat.sources(principal)
            if not heat:
                raise NotFound("no heat map this caller may read", parameter="layer")
        elif layer_id is not None:
            layers = [self.layer(principal, layer_id)]
        else:
            layers, heat = self.readable(principal), self.heat.sources(principal)
        drawn = tuple((lyr, sc) for lyr, sc in layers if lyr.min_zoom <= z <= lyr.max_zoom)
        heat = heat if TILE_LAYER.min_zoom <= z <= TILE_LAYER.max_zoom else ()
        counted = [lyr for lyr, _ in (*layers, *heat)]
        ids = tuple(lyr.id for lyr, _ in drawn) + ((HEATMAP,) if heat else ())
        scopes = [sc.cache_key() for _, sc in drawn] + ([",".join(f"{lyr.id}={sc.cache_key()}" for lyr, sc in heat)]
                                                        if heat else [])
        plan = (drawn, heat, ids, ";".join(scopes), LIVE_MAX_AGE if any(lyr.live for lyr in counted) else STATIC_MAX_AGE,
                all(lyr.public for lyr in counted))
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()  # a crowd of distinct callers: start over rather than grow
        self._plans[memo] = plan
        return plan

    def cached(self, job: TileJob) -> TileResult | None:
        """The tile from memory if it is there (cheap enough for an event loop), else None."""
        if not job.drawn and not job.heat:
            return TileResult(b"", "", job.max_age, job.public)
        hit = self.cache.peek(job.key)
        return None if hit is None else TileResult(hit.content, hit.etag, job.max_age, job.public)

    def render(self, job: TileJob) -> TileResult:
        """The tile from the cache tiers or built by the store (blocking)."""
        if not job.drawn and not job.heat:
            return TileResult(b"", "", job.max_age, job.public)

        def build() -> bytes:
            # A tile is a sequence of layer messages, so single-layer tiles concatenate into a combined one.
            tile = b"".join(self.store.tile(lyr.id, request, sc) for lyr, request, sc in self._requests(job))
            if job.heat:
                tiling = get_tiling(job.key.tms)
                tile += self.heat.render(job.heat, self.plan.request(TILE_LAYER, tiling, *job.key.zxy))
            return tile

        tile = self.cache.get_or_render(job.key, build)
        return TileResult(tile.content, tile.etag, job.max_age, job.public)

    async def render_async(self, job: TileJob) -> TileResult | None:
        """`render` on the event loop where the store builds tiles there (PostGIS); None where it cannot
        (another store, the heat map, the disk tier: blocking work; a filtered tile), for the caller to use
        `render`."""
        if job.heat or job.where is not None or self.cache.directory or not self.store.async_tiles():
            return None
        tile, generation = self.cache.lookup(job.key)
        if tile is None:
            parts = [await self.store.tile_async(lyr.id, request, sc) for lyr, request, sc in self._requests(job)]
            tile = self.cache.keep(job.key, b"".join(parts), generation)
        return TileResult(tile.content, tile.etag, job.max_age, job.public)

    def _requests(self, job: TileJob) -> list[tuple[Layer, TileRequest, Scope]]:
        """Each drawn layer of the job with its tile request and the caller's scope."""
        tiling = get_tiling(job.key.tms)
        return [(lyr, self.plan.request(lyr, tiling, *job.key.zxy, where=job.where), sc) for lyr, sc in job.drawn]

    def collection_tile(self, principal: Principal, layer_id: str, tms_id: str, z: int, x: int, y: int) -> TileResult:
        """One layer's tile for the principal (empty outside the layer's zoom range)."""
        return self.render(self.prepare(principal, layer_id, tms_id, z, x, y))

    def combined_tile(self, principal: Principal, tms_id: str, z: int, x: int, y: int) -> TileResult:
        """The tile of every layer the principal may read that is drawn at zoom `z`."""
        return self.render(self.prepare(principal, None, tms_id, z, x, y))


@dataclass(frozen=True)
class TileJob:
    """What one tile request holds: the layers drawn with their scopes, the cache key, how to cache it."""

    drawn: tuple[tuple[Layer, Scope], ...]
    key: TileKey
    max_age: int
    public: bool
    # The layers the heatmap layer counts, with the caller's scopes (empty: no heatmap layer in this tile).
    heat: tuple[tuple[Layer, Scope], ...] = ()
    where: TileFilter | None = None
