"""Settings, read from the environment once by the caller and passed into create_app (never at import)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SAMPLE_DIR = Path("data/sample")


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start."""

    database: str = str(DEFAULT_SAMPLE_DIR / "county.gpkg")
    sample_dir: Path = DEFAULT_SAMPLE_DIR
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    token_minutes: int = 12 * 60
    # Where clients reach the server (behind a proxy). Unset, links name the request's Host when it is one
    # of allowed_hosts (None: the listen host, localhost, 127.0.0.1), else the listen address (api/links.py).
    public_url: str | None = None
    allowed_hosts: tuple[str, ...] | None = None
    listen: str = "127.0.0.1:8000"  # host:port the server is bound to; `onemap serve` passes its own
    # The MQTT broker readings come from (mqtt://user:pass@host:1883, mqtts:// for TLS); None: HTTP only.
    mqtt_url: str | None = None
    mqtt_ca_file: str | None = None  # CA certificates for mqtts:// (None: the system's)
    mqtt_client_id: str | None = None  # the county's session at the broker (None: onemap-<database name>)
    # Back-pressure on POST /readings, per process: batches stored at once, and waiting; beyond that 429.
    ingest_concurrency: int = 2
    ingest_waiting: int = 8
    oidc_jwks_url: str | None = None
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    tile_cache_mb: int = 256
    tile_cache_dir: Path | None = None
    # Rendered imagery, terrain and hillshade tiles kept in memory (rasters do not change while serving).
    raster_cache_mb: int = 64
    rasters: tuple[Path, ...] = ()
    migrate_on_start: bool = False
    # How long the change log keeps rows: a stream reconnecting from before that gets a `reset`.
    change_retention_hours: float = 72.0
    stream_heartbeat_seconds: float = 15.0
    # A patrol with no fix or activity for this long is closed by a background job (its record says so).
    patrol_silence_minutes: float = 120.0
    # Patrol statistics (/stats/patrols): a worker is online now with a fix this recent; a day's targets.
    online_minutes: float = 10.0
    patrol_target_km: float = 5.0
    patrol_target_minutes: float = 120.0
    # A fix from a tracker app whose owner has no open patrol starts one ("patrol") or only moves his
    # position ("position").
    gps_autostart: str = "patrol"
    # Run the background jobs (purges, deadlines, and what the domain adds) in this process; each job still
    # runs in one process at a time under a lease. ONEMAP_JOBS=0 turns them off even for Settings built in
    # code (the test suite does, so no app of a test writes into the shared sample county behind its back).
    jobs: bool = field(default_factory=lambda: not _off(os.environ.get("ONEMAP_JOBS", "")))
    # Largest request body taken (JSON features, filters, forms); larger ones are refused with 413.
    max_body_mb: float = 5.0
    # Largest photo or file attached to an event (ONEMAP_MAX_ATTACHMENT_MB); larger ones are refused with 413.
    max_attachment_mb: float = 10.0
    # A reported point within this many metres of another township or grid is flagged near_border.
    border_flag_metres: float = 50.0
    # Failed logins allowed per account and per client address in a window of seconds (0: no limit).
    login_account_limit: int = 10
    login_address_limit: int = 100
    login_window_seconds: int = 900

    def __post_init__(self) -> None:
        if self.gps_autostart not in ("patrol", "position"):
            raise ValueError(f"ONEMAP_GPS_AUTOSTART must be patrol or position; got {self.gps_autostart!r}")
        if not (0 < self.max_attachment_mb <= 1024):
            raise ValueError(f"ONEMAP_MAX_ATTACHMENT_MB must be above 0 and at most 1024, got {self.max_attachment_mb}")

    @property
    def max_attachment_bytes(self) -> int:
        """The attachment limit in bytes."""
        return int(self.max_attachment_mb * 2**20)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ONEMAP_* environment variables, then explicit overrides."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        if "ONEMAP_DATABASE" in env:
            values["database"] = env["ONEMAP_DATABASE"]
        if "ONEMAP_SAMPLE_DIR" in env:
            values["sample_dir"] = Path(env["ONEMAP_SAMPLE_DIR"])
            values.setdefault("database", str(Path(env["ONEMAP_SAMPLE_DIR"]) / "county.gpkg"))
        if "ONEMAP_SECRET" in env:
            values["secret"] = env["ONEMAP_SECRET"]
        if "ONEMAP_PUBLIC_URL" in env:
            values["public_url"] = env["ONEMAP_PUBLIC_URL"].rstrip("/")
        if env.get("ONEMAP_LISTEN", "").strip():  # set by `onemap serve --workers N` for its workers
            values["listen"] = env["ONEMAP_LISTEN"].strip()
        if env.get("ONEMAP_ALLOWED_HOSTS", "").strip():
            values["allowed_hosts"] = tuple(h.strip() for h in env["ONEMAP_ALLOWED_HOSTS"].split(",") if h.strip())
        for key, name in (("ONEMAP_MQTT_URL", "mqtt_url"), ("ONEMAP_MQTT_CA_FILE", "mqtt_ca_file"),
                          ("ONEMAP_MQTT_CLIENT_ID", "mqtt_client_id")):
            if env.get(key, "").strip():
                values[name] = env[key].strip()
        for key, name in (("ONEMAP_INGEST_CONCURRENCY", "ingest_concurrency"),
                          ("ONEMAP_INGEST_WAITING", "ingest_waiting")):
            if key in env:
                values[name] = int(env[key])
        for key, name in (("ONEMAP_OIDC_JWKS_URL", "oidc_jwks_url"), ("ONEMAP_OIDC_ISSUER", "oidc_issuer"),
                          ("ONEMAP_OIDC_AUDIENCE", "oidc_audience")):
            if key in env:
                values[name] = env[key]
        if "ONEMAP_TILE_CACHE_MB" in env:
            values["tile_cache_mb"] = int(env["ONEMAP_TILE_CACHE_MB"])
        if "ONEMAP_RASTER_CACHE_MB" in env:
            values["raster_cache_mb"] = int(env["ONEMAP_RASTER_CACHE_MB"])
        if "ONEMAP_TILE_CACHE_DIR" in env:
            values["tile_cache_dir"] = Path(env["ONEMAP_TILE_CACHE_DIR"])
        if "ONEMAP_RASTERS" in env:
            values["rasters"] = tuple(Path(p) for p in env["ONEMAP_RASTERS"].split(",") if p)
        if "ONEMAP_MAX_BODY_MB" in env:
            values["max_body_mb"] = float(env["ONEMAP_MAX_BODY_MB"])
        if "ONEMAP_MAX_ATTACHMENT_MB" in env:
            values["max_attachment_mb"] = float(env["ONEMAP_MAX_ATTACHMENT_MB"])
        if "ONEMAP_BORDER_FLAG_METERS" in env:
            values["border_flag_metres"] = float(env["ONEMAP_BORDER_FLAG_METERS"])
        for key, name, kind in (("ONEMAP_LOGIN_ACCOUNT_LIMIT", "login_account_limit", int),
                                ("ONEMAP_LOGIN_ADDRESS_LIMIT", "login_address_limit", int),
                                ("ONEMAP_LOGIN_WINDOW_SECONDS", "login_window_seconds", int)):
            if key in env:
                values[name] = kind(env[key])
        if env.get("ONEMAP_MIGRATE_ON_START", "").lower() in ("1", "true", "yes"):
            values["migrate_on_start"] = True
        if "ONEMAP_CHANGE_RETENTION_HOURS" in env:
            values["change_retention_hours"] = float(env["ONEMAP_CHANGE_RETENTION_HOURS"])
        if "ONEMAP_PATROL_SILENCE_MINUTES" in env:
            values["patrol_silence_minutes"] = float(env["ONEMAP_PATROL_SILENCE_MINUTES"])
        for key, name in (("ONEMAP_ONLINE_MINUTES", "online_minutes"), ("ONEMAP_PATROL_TARGET_KM", "patrol_target_km"),
                          ("ONEMAP_PATROL_TARGET_MINUTES", "patrol_target_minutes")):
            if key in env:
                values[name] = float(env[key])
        if "ONEMAP_GPS_AUTOSTART" in env:
            values["gps_autostart"] = env["ONEMAP_GPS_AUTOSTART"].strip().lower()
        if "ONEMAP_STREAM_HEARTBEAT" in env:
            values["stream_heartbeat_seconds"] = float(env["ONEMAP_STREAM_HEARTBEAT"])
        if "ONEMAP_JOBS" in env:
            values["jobs"] = not _off(env["ONEMAP_JOBS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _off(value: str) -> bool:
    return value.strip().lower() in ("0", "false", "no", "off")
