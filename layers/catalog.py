"""The county's layer catalog: every declared layer, in the order the layer tree shows them."""

from geoserver.catalog import Catalog
from layers.admin import GRIDS, TOWNSHIPS, VILLAGES
from layers.alarm_tables import TABLES as ALARM_TABLES
from layers.alarms import ALARMS
from layers.attachment_tables import TABLES as ATTACHMENT_TABLES
from layers.buildings import BUILDINGS
from layers.devices import TABLES as DEVICE_TABLES
from layers.dispatch_tables import TABLES
from layers.events import EVENTS
from layers.monitoring_tables import TABLES as MONITORING_TABLES
from layers.patrols import PATROLS, TRACK_POINTS
from layers.pois import POIS
from layers.positions import POSITIONS
from layers.sites import MONITORING_SITES, READINGS
from layers.task_tables import TABLES as TASK_TABLES
from layers.temples import TEMPLES

ALL_LAYERS = (TOWNSHIPS, VILLAGES, GRIDS, BUILDINGS, TEMPLES, MONITORING_SITES, POIS, EVENTS, PATROLS,
              TRACK_POINTS, POSITIONS, READINGS, ALARMS)


def build_catalog() -> Catalog:
    """The catalog of every layer and domain table of the county."""
    return Catalog(ALL_LAYERS, (*TABLES, *MONITORING_TABLES, *ALARM_TABLES, *TASK_TABLES, *DEVICE_TABLES,
                                *ATTACHMENT_TABLES))
