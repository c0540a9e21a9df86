"""The monitoring tables that are not map layers: readings refused at the door, with why."""

from geoserver.catalog import Property, Table

REJECTED_READINGS = Table(
    id="rejected_readings",
    title="Rejected readings",
    description="Every reading refused over HTTP or MQTT, with the reason and the field at fault.",
    columns=(
        Property("received_at", "datetime", "Received at", required=True),
        Property("source", "string", "Source (http or mqtt)", required=True),
        Property("actor", "string", "Sent by"),
        Property("site_id", "integer", "Site id as sent"),
        Property("metric", "string", "Metric as sent"),
        Property("reason", "string", "Reason", required=True),
        Property("field", "string", "Field at fault"),
        Property("reading", "json", "The reading as sent (cut when large)"),
    ),
)

TABLES = (REJECTED_READINGS,)
