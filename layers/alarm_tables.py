"""The alarm tables that are not map layers: the rules (data, per site kind with per-site overrides), each
(site, rule)'s evaluation state, and every alarm's timeline."""

from geoserver.catalog import Property, Table
from layers.common import timeline_table

ALARM_RULES = Table(
    id="alarm_rules",
    title="Alarm rules",
    description="When a site's readings (or their absence) raise an alarm, when it clears, how severe it is.",
    columns=(
        Property("name", "string", "Name", required=True),
        Property("site_kind", "string", "Site kind", required=True),
        Property("site_id", "integer", "Site (an override of the kind's rule for this one site)"),
        Property("metric", "string", "Metric (none: any reading, for no_data rules)"),
        Property("condition", "string", "above, below, outside, rate_above, rate_below or no_data", required=True),
        Property("low", "number", "Raise below this (value, or rate per minute)"),
        Property("high", "number", "Raise above this (value, or rate per minute)"),
        Property("clear_low", "number", "Clear at or above this"),
        Property("clear_high", "number", "Clear at or below this"),
        Property("for_readings", "integer", "Consecutive readings past the limit before raising", required=True),
        Property("for_seconds", "number", "Seconds past the limit before raising (no_data: silence)"),
        Property("severity", "string", "info, warning or critical", required=True),
        Property("auto_resolve", "boolean", "Resolve by itself when the clear condition holds", required=True),
        Property("enabled", "boolean", "Evaluated at all", required=True),
        Property("event_type", "string", "Event type of an alarm turned into an event"),
        Property("updated_at", "datetime", "Last changed", required=True),
    ),
)

ALARM_STATE = Table(
    id="alarm_state",
    title="Alarm rule state",
    description="Per (site, rule): consecutive readings past the limit, since when, the last reading, the open "
                "alarm -- in the database, so every server process evaluates alike.",
    columns=(
        Property("site_id", "integer", "Site", required=True),
        Property("rule_id", "integer", "Rule", required=True),
        Property("count", "integer", "Consecutive readings past the limit", required=True),
        Property("crossed_at", "datetime", "First reading of the current run past the limit"),
        Property("last_value", "number", "Last reading's value"),
        Property("last_at", "datetime", "Last reading's time"),
        Property("watched_at", "datetime", "Watched since (the silence clock starts here)", required=True),
        Property("alarm_id", "integer", "The open alarm"),
    ),
)

ALARM_TIMELINE = timeline_table(
    "alarm_timeline", "Alarm timeline",
    "Every change of every alarm: raised, repeated, acknowledged, resolved, turned into an event.",
    "alarm_id", "Alarm",
)

TABLES = (ALARM_RULES, ALARM_STATE, ALARM_TIMELINE)
