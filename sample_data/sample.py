"""The sample county as one object: each part generated once, on demand, and every layer as a stream."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from geoserver.features import Feature
from geoserver.store import UserRecord
from sample_data.alarms import alarm_features
from sample_data.county import County, Grid, admin_features, build_county
from sample_data.events import EventPlan, EventSpace, iter_events, make_plan
from sample_data.patrols import (
    PatrolMaker,
    Schedule,
    iter_patrol_chunks,
    make_schedule,
    patrol_workers,
    silent_spells,
)
from sample_data.scales import Scale, get_scale
from sample_data.sensors import Site, SiteAlarm, iter_readings, site_alarms, sites_from_features
from sample_data.settlements import (
    SettlementSummary,
    TemplePlan,
    allocate,
    iter_buildings,
    plan_temples,
    summarise,
)
from sample_data.things import poi_features, site_features, temple_features
from sample_data.users import sample_users

LAYER_IDS = ("townships", "villages", "grids", "buildings", "temples", "monitoring_sites", "pois", "events",
             "patrols", "track_points", "readings", "alarms")


class SampleCounty:
    """The deterministic sample county of one scale and seed."""

    def __init__(self, scale: str = "default", seed: int = 2026) -> None:
        self.scale: Scale = get_scale(scale)
        self.seed = seed

    @cached_property
    def county(self) -> County:
        """Townships, villages, grids, settlements (with their building counts) and rivers."""
        county = build_county(self.scale, self.seed)
        allocate(county, self.scale)
        return county

    @cached_property
    def temples(self) -> list[TemplePlan]:
        """The temples and their buildings."""
        return plan_temples(self.county, self.scale, self.seed)

    @cached_property
    def summaries(self) -> list[SettlementSummary]:
        """Named buildings and old houses of each settlement."""
        return summarise(self.county, self.seed)

    @cached_property
    def sites(self) -> list[Feature]:
        """The monitoring sites."""
        return site_features(self.county, self.summaries, self.temples, self.scale, self.seed)

    @cached_property
    def site_list(self) -> list[Site]:
        """The monitoring sites, as the readings need them."""
        return sites_from_features(self.sites)

    @cached_property
    def site_alarms(self) -> list[SiteAlarm]:
        """Threshold and offline alarms of every site."""
        return [a for site in self.site_list for a in site_alarms(self.scale, self.seed, site)]

    @cached_property
    def event_plan(self) -> EventPlan:
        """Daily event counts and the alarms turned into events."""
        return make_plan(self.scale, self.seed, self.site_alarms)

    @cached_property
    def event_space(self) -> EventSpace:
        """Where events happen."""
        return EventSpace(self.county)

    @cached_property
    def workers(self) -> list[Grid]:
        """The grids whose workers patrol."""
        return patrol_workers(self.county, self.scale, self.seed)

    @cached_property
    def schedule(self) -> Schedule:
        """Every patrol of the window."""
        return make_schedule(self.workers, self.scale, self.seed)

    def users(self) -> list[UserRecord]:
        """The sample accounts."""
        return sample_users(self.county)

    def chunks(self, layer_id: str) -> Iterator[list[Feature]]:
        """A layer's features in id order, in chunks of bounded size."""
        if layer_id in ("townships", "villages", "grids"):
            yield admin_features(self.county, layer_id)
        elif layer_id == "buildings":
            yield from iter_buildings(self.county, self.temples, self.seed)
        elif layer_id == "temples":
            yield temple_features(self.county, self.temples)
        elif layer_id == "monitoring_sites":
            yield self.sites
        elif layer_id == "pois":
            yield poi_features(self.county, self.summaries, self.seed)
        elif layer_id == "events":
            yield from iter_events(self.event_plan, self.event_space)
        elif layer_id in ("patrols", "track_points"):
            maker = PatrolMaker(self.county, self.workers, self.schedule, self.seed)
            for patrols, points in iter_patrol_chunks(self.county, maker):
                yield patrols if layer_id == "patrols" else points
        elif layer_id == "readings":
            yield from iter_readings(self.scale, self.seed, self.site_list)
        elif layer_id == "alarms":
            spells = silent_spells(self.workers, self.schedule)
            yield alarm_features(self.site_alarms, self.event_plan, self.event_space, spells, self.scale, self.seed)
        else:
            raise ValueError(f"unknown layer {layer_id!r}; known: {', '.join(LAYER_IDS)}")

    def iter_layer(self, layer_id: str) -> Iterator[Feature]:
        """A layer's features, one by one, in id order."""
        for chunk in self.chunks(layer_id):
            yield from chunk
