"""Monitoring sites (sensors, stations, cameras) and the readings they send."""

from geoserver.catalog import Layer, Property, Style
from layers.common import GRID, NAME, TOWNSHIP

SITE_KINDS = ("smoke", "temperature", "electric_fire", "water_quality", "air", "waste_bin", "camera")
SITE_STATUSES = ("online", "offline", "fault")
# What each kind of site measures: metric -> unit.
METRICS: dict[str, dict[str, str]] = {
    "smoke": {"smoke_density": "%obs/m"},
    "temperature": {"temperature": "°C"},
    "electric_fire": {"residual_current": "mA", "cable_temperature": "°C"},
    "water_quality": {"water_temperature": "°C", "ph": "pH", "turbidity": "NTU", "conductivity": "µS/cm",
                      "dissolved_oxygen": "mg/L", "cod": "mg/L"},
    "air": {"pm25": "µg/m³", "pm10": "µg/m³", "aqi": "AQI"},
    "waste_bin": {"fill_level": "%"},
    "camera": {"online": "bool"},
}
# What the command screen calls each metric (alarm messages are written in the county's language).
METRIC_ZH = {"smoke_density": "烟雾浓度", "temperature": "温度", "residual_current": "剩余电流",
             "cable_temperature": "线缆温度", "water_temperature": "水温", "ph": "pH", "turbidity": "浊度",
             "conductivity": "电导率", "dissolved_oxygen": "溶解氧", "cod": "化学需氧量", "pm25": "PM2.5",
             "pm10": "PM10", "aqi": "AQI", "fill_level": "满溢度", "online": "在线状态"}
SITE_DEPARTMENTS = {"smoke": "emergency", "temperature": "emergency", "electric_fire": "emergency",
                    "water_quality": "ecology", "air": "ecology", "waste_bin": "urban", "camera": "security"}

MONITORING_SITES = Layer(
    id="monitoring_sites",
    title="Monitoring sites",
    description="Smoke/temperature/electric-fire sensors, water-quality and air stations, bin sensors, cameras.",
    geometry_type="Point",
    properties=(
        Property("site_code", "string", "Site code", required=True),
        NAME,
        TOWNSHIP,
        GRID,
        Property("kind", "string", "Kind", required=True, enum=SITE_KINDS),
        Property("status", "string", "Status", enum=SITE_STATUSES),
        Property("department", "string", "Department"),
        Property("installed_on", "date", "Installed on", tile_min_zoom=16),
    ),
    min_zoom=8,
    style=Style("circle", "#16a085", radius=5,
                match=("status", (("offline", "#7f8c8d"), ("fault", "#e74c3c")))),
    departments=("ecology", "emergency", "urban", "security"),
    keywords=("monitoring", "iot"),
    mercator_copy=True,
)

READINGS = Layer(
    id="readings",
    title="Sensor readings",
    description="Readings sent by monitoring sites, over HTTP or MQTT.",
    geometry_type="Point",
    properties=(
        Property("site_id", "integer", "Site id", required=True),
        Property("kind", "string", "Site kind", enum=SITE_KINDS),
        Property("metric", "string", "Metric", required=True),
        Property("value", "number", "Value", required=True),
        Property("unit", "string", "Unit"),
        Property("observed_at", "datetime", "Observed at", required=True),
        TOWNSHIP,
        GRID,
    ),
    time_field="observed_at",
    min_zoom=14,
    style=Style("circle", "#95a5a6", radius=2),
    departments=("ecology", "emergency", "urban", "security"),
    live=True,
    keywords=("monitoring", "iot"),
)
