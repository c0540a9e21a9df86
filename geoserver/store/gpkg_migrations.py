"""Numbered schema steps for the GeoPackage store, like the PostGIS SQL migrations, and the same drift check.

Each step runs at most once, in order, inside one BEGIN IMMEDIATE transaction, and is recorded in
`onemap_migrations` (a GeoPackage attributes table). A file written before the steps were numbered (it has
the onemap tables but no `onemap_migrations`) counts as having step 1 and is brought up from there.
Steps are Python because SQLite DDL differs from PostgreSQL's; they only ever add (tables, columns, indexes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from geoserver.catalog import GRID_KEY, TOWNSHIP_KEY, Catalog, Layer
from geoserver.store import accounts_sql, gpkg, h3cells, log_sql
from geoserver.store import idempotency_sql as keys

q = gpkg.q
ACCOUNT_DDL = (
    """CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  username TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  display_name TEXT NOT NULL DEFAULT '',
  townships TEXT NOT NULL DEFAULT '[]',
  grids TEXT NOT NULL DEFAULT '[]',
  department TEXT,
  extra TEXT NOT NULL DEFAULT '{}'
)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  key_hash TEXT NOT NULL UNIQUE,
  username TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT ''
)""",
)


def _initial(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 1: the GeoPackage core, one feature table per layer with its RTree and key indexes, accounts,
    idempotency keys (what the store created before steps were numbered)."""
    gpkg.create_core(conn)
    for layer in catalog:
        gpkg.create_feature_table(conn, layer)
        for column in (TOWNSHIP_KEY, GRID_KEY, layer.time_field, layer.time_end_field):
            if column and layer.has_prop(column):
                conn.execute(f"CREATE INDEX IF NOT EXISTS {q(f'idx_{layer.id}_{column}')} "
                             f"ON {q(layer.id)} ({q(column)})")
    for ddl in (*ACCOUNT_DDL, keys.SQLITE_DDL):
        conn.execute(ddl)
    gpkg.register_attributes(conn, "users", "User accounts (roles, townships, grids, department)")
    gpkg.register_attributes(conn, "api_keys", "API keys, stored as hashes")
    gpkg.register_attributes(conn, "idempotency_keys", "Idempotency-Key requests and their responses")


def _change_log(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 2: the change log and job leases; a patrol's points in time order (as PostGIS has it)."""
    for ddl in log_sql.SQLITE_DDL:
        conn.execute(ddl)
    gpkg.register_attributes(conn, "changes", "The change log: every committed write, in seq order")
    gpkg.register_attributes(conn, "job_leases", "Which server process runs each background job")
    if "track_points" in catalog:
        conn.execute('CREATE INDEX IF NOT EXISTS "idx_track_points_patrol" ON "track_points" '
                     '("patrol_id", "recorded_at")')


def _dispatch(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 3: the dispatch centre's tables (event types, event timelines, grid bindings)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS event_types (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  code TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  deadline_hours REAL,
  warn_hours REAL,
  verify_required BOOLEAN,
  departments TEXT,
  escalation TEXT,
  auto_escalate BOOLEAN,
  retired BOOLEAN
)""")
    conn.execute("""CREATE TABLE IF NOT EXISTS event_timeline (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  event_id INTEGER NOT NULL,
  at DATETIME NOT NULL,
  actor TEXT,
  action TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT,
  note TEXT,
  data TEXT
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_event_timeline_event ON event_timeline (event_id, id)")
    conn.execute("""CREATE TABLE IF NOT EXISTS grid_bindings (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  grid_code TEXT NOT NULL,
  username TEXT NOT NULL,
  role TEXT NOT NULL,
  UNIQUE (grid_code, username, role)
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_grid_bindings_username ON grid_bindings (username)")
    if "events" in catalog:  # a file made by step 1 of this release already has them
        have = {row[1] for row in conn.execute('PRAGMA table_info("events")')}
        for column, sqltype in (("department", "TEXT"), ("escalation_level", "INTEGER"), ("due_state", "TEXT"),
                               ("merged_into", "INTEGER")):
            if column not in have:
                conn.execute(f'ALTER TABLE "events" ADD COLUMN "{column}" {sqltype}')
    for table, text in (("event_types", "Event types: deadlines, verification, escalation"),
                        ("event_timeline", "Every step of every event"),
                        ("grid_bindings", "Each grid's team and bound departments")):
        gpkg.register_attributes(conn, table, text)


def _rejected_readings(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 4: readings refused at the door, with their reason."""
    conn.execute("""CREATE TABLE IF NOT EXISTS rejected_readings (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  received_at DATETIME NOT NULL,
  source TEXT NOT NULL,
  actor TEXT,
  site_id INTEGER,
  metric TEXT,
  reason TEXT NOT NULL,
  field TEXT,
  reading TEXT
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_rejected_readings_received ON rejected_readings (received_at)")
    gpkg.register_attributes(conn, "rejected_readings", "Readings refused at the door, with their reason")


def _patrols(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 5: patrol work -- a patrol's task, last activity and how it ended; each fix's heading, altitude,
    battery and upload key, unique within its patrol."""
    for table, columns in (("patrols", (("task_id", "INTEGER"), ("last_fix_at", "DATETIME"),
                                        ("close_reason", "TEXT"))),
                           ("track_points", (("heading", "REAL"), ("altitude", "REAL"), ("battery", "REAL"),
                                             ("point_key", "TEXT")))):
        if table not in catalog:
            continue
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({q(table)})")}
        for column, sqltype in columns:
            if column not in have:
                conn.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(column)} {sqltype}")
    if "track_points" in catalog:
        conn.execute('CREATE UNIQUE INDEX IF NOT EXISTS "idx_track_points_patrol_key" ON "track_points" '
                     '("patrol_id", "point_key")')
    if "patrols" in catalog:
        conn.execute('CREATE INDEX IF NOT EXISTS "idx_patrols_last_fix_at" ON "patrols" ("last_fix_at")')


def _account_lifecycle(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 6: accounts that can be disabled, their auth_version, API key ids, failed-login counters."""
    accounts_sql.sqlite_account_lifecycle(conn)


def _alarm_rules(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 7: alarm rules as data, each (site, rule)'s evaluation state, every alarm's timeline; what the
    lifecycle adds to an alarm (its site's kind, rule, repeat count, worst and last value); one open alarm
    per (site, rule)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS alarm_rules (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  name TEXT NOT NULL,
  site_kind TEXT NOT NULL,
  site_id INTEGER,
  metric TEXT,
  condition TEXT NOT NULL,
  low REAL,
  high REAL,
  clear_low REAL,
  clear_high REAL,
  for_readings INTEGER NOT NULL,
  for_seconds REAL,
  severity TEXT NOT NULL,
  auto_resolve BOOLEAN NOT NULL,
  enabled BOOLEAN NOT NULL,
  event_type TEXT,
  updated_at DATETIME NOT NULL
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_alarm_rules_kind ON alarm_rules (site_kind)")
    conn.execute("""CREATE TABLE IF NOT EXISTS alarm_state (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  site_id INTEGER NOT NULL,
  rule_id INTEGER NOT NULL,
  count INTEGER NOT NULL,
  crossed_at DATETIME,
  last_value REAL,
  last_at DATETIME,
  watched_at DATETIME NOT NULL,
  alarm_id INTEGER,
  UNIQUE (site_id, rule_id)
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_alarm_state_rule ON alarm_state (rule_id)")
    conn.execute("""CREATE TABLE IF NOT EXISTS alarm_timeline (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  alarm_id INTEGER NOT NULL,
  at DATETIME NOT NULL,
  actor TEXT,
  action TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT,
  note TEXT,
  data TEXT
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_alarm_timeline_alarm ON alarm_timeline (alarm_id, id)")
    if "alarms" in catalog:  # a file made by step 1 of this release already has them
        have = {row[1] for row in conn.execute('PRAGMA table_info("alarms")')}
        for column, sqltype in (("site_kind", "TEXT"), ("rule_id", "INTEGER"), ("count", "INTEGER"),
                                ("peak", "REAL"), ("last_value", "REAL"), ("last_at", "DATETIME")):
            if column not in have:
                conn.execute(f'ALTER TABLE "alarms" ADD COLUMN "{column}" {sqltype}')
        conn.execute('CREATE UNIQUE INDEX IF NOT EXISTS "idx_alarms_open_per_rule" ON "alarms" ("site_id", "rule_id") '
                     "WHERE rule_id IS NOT NULL AND status <> 'resolved'")
    for table, text in (("alarm_rules", "Alarm rules: per site kind, with per-site overrides"),
                        ("alarm_state", "Each (site, rule)'s evaluation state"),
                        ("alarm_timeline", "Every change of every alarm")):
        gpkg.register_attributes(conn, table, text)


def _tasks(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 8: patrol and visit tasks, their history, and the task an event was found on."""
    conn.execute("""CREATE TABLE IF NOT EXISTS tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  title TEXT NOT NULL,
  description TEXT,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  township_code TEXT NOT NULL,
  grid_code TEXT,
  assignee TEXT,
  due_at DATETIME NOT NULL,
  objects TEXT,
  created_by TEXT,
  created_at DATETIME NOT NULL,
  started_at DATETIME,
  finished_at DATETIME
)""")
    for column in (("township_code", "status"), ("grid_code",), ("assignee",)):
        conn.execute(f"CREATE INDEX IF NOT EXISTS idx_tasks_{'_'.join(column)} ON tasks ({', '.join(column)})")
    conn.execute("""CREATE TABLE IF NOT EXISTS task_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  task_id INTEGER NOT NULL,
  at DATETIME NOT NULL,
  actor TEXT,
  action TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT,
  note TEXT,
  data TEXT
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_task_history_task ON task_history (task_id, id)")
    if "events" in catalog:  # a file made by step 1 of this release already has it
        if "task_id" not in {row[1] for row in conn.execute('PRAGMA table_info("events")')}:
            conn.execute('ALTER TABLE "events" ADD COLUMN "task_id" INTEGER')
        conn.execute('CREATE INDEX IF NOT EXISTS "idx_events_task_id" ON "events" ("task_id")')
    gpkg.register_attributes(conn, "tasks", "Patrol and visit tasks with the objects to visit")
    gpkg.register_attributes(conn, "task_history", "Every step of every task")


def _h3_cells(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 9: heat-mapped layers keep each feature's H3 cells (h3cells.py; filled after the steps run)."""
    for layer in catalog:
        if not layer.h3_cells:
            continue
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({q(layer.id)})")}
        if h3cells.COLUMN not in have:
            conn.execute(f"ALTER TABLE {q(layer.id)} ADD COLUMN {q(h3cells.COLUMN)} BLOB")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {q(f'idx_{layer.id}_h3_cells_missing')} ON {q(layer.id)} "
                     f"({q(gpkg.ID_COLUMN)}) WHERE {q(h3cells.COLUMN)} IS NULL")


def _devices(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 10: devices sending GPS fixes through the tracker-app protocols (the URL token only as a hash)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS devices (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  device_id TEXT NOT NULL UNIQUE,
  name TEXT,
  username TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at DATETIME NOT NULL,
  last_seen_at DATETIME
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_devices_username ON devices (username)")
    gpkg.register_attributes(conn, "devices", "Phones sending GPS fixes, their owners and token hashes")


def _positions(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 11: live positions, one point per worker (a feature table like the others)."""
    if "positions" not in catalog:
        return
    layer = catalog.get("positions")
    gpkg.create_feature_table(conn, layer)
    for column in (TOWNSHIP_KEY, GRID_KEY, "recorded_at"):
        conn.execute(f"CREATE INDEX IF NOT EXISTS {q(f'idx_positions_{column}')} ON positions ({q(column)})")
    conn.execute('CREATE UNIQUE INDEX IF NOT EXISTS "idx_positions_worker" ON positions ("worker")')


def _event_border(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 12: an event's `near_border` flag (set by routing)."""
    _add_columns(conn, catalog, "events", (("near_border", "BOOLEAN"),))


def _event_attachments(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 13: the photos and files of events (metadata and bytes apart) and the event's attachment count."""
    conn.execute("""CREATE TABLE IF NOT EXISTS event_attachments (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  event_id INTEGER NOT NULL,
  uploaded_at DATETIME NOT NULL,
  uploader TEXT,
  filename TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  lon REAL,
  lat REAL,
  action TEXT,
  note TEXT
)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_event_attachments_event ON event_attachments (event_id, id)")
    conn.execute("""CREATE TABLE IF NOT EXISTS event_attachment_blobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  attachment_id INTEGER NOT NULL UNIQUE,
  content BLOB NOT NULL
)""")
    _add_columns(conn, catalog, "events", (("attachment_count", "INTEGER"),))
    gpkg.register_attributes(conn, "event_attachments", "Photos and files of events (metadata)")
    gpkg.register_attributes(conn, "event_attachment_blobs", "The bytes of each event attachment")


def _add_columns(conn: sqlite3.Connection, catalog: Catalog, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    """Add the columns a layer's table lacks (a file made by step 1 of a later release has them already)."""
    if table not in catalog:
        return
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({q(table)})")}
    for column, sqltype in columns:
        if column not in have:
            conn.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(column)} {sqltype}")
def _readings_key(conn: sqlite3.Connection, catalog: Catalog) -> None:
    """Step 14: a reading's natural key (site, metric, observed_at) is unique; earlier copies keep the first."""
    if "readings" not in catalog:
        return
    conn.execute('DELETE FROM "readings" WHERE "fid" NOT IN (SELECT min("fid") FROM "readings" '
                 'GROUP BY "site_id", "metric", "observed_at")')
    conn.execute('CREATE UNIQUE INDEX IF NOT EXISTS "idx_readings_natural_key" ON "readings" '
                 '("site_id", "metric", "observed_at")')


Step = Callable[[sqlite3.Connection, Catalog], None]
STEPS: tuple[tuple[int, str, Step], ...] = (
    (1, "initial", _initial),
    (2, "change_log", _change_log),
    (3, "dispatch", _dispatch),
    (4, "rejected_readings", _rejected_readings),
    (5, "patrols", _patrols),
    (6, "account_lifecycle", _account_lifecycle),
    (7, "alarm_rules", _alarm_rules),
    (8, "tasks", _tasks),
    (9, "h3_cells", _h3_cells),
    (10, "devices", _devices),
    (11, "positions", _positions),
    (12, "event_border", _event_border),
    (13, "event_attachments", _event_attachments),
    (14, "readings_key", _readings_key),
)
_TABLE = "onemap_migrations"


def applied(conn: sqlite3.Connection) -> set[int]:
    """The steps recorded in the file (step 1 for a file from before numbered steps; none for a new one)."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)).fetchone()
    if has:
        return {row[0] for row in conn.execute(f"SELECT version FROM {_TABLE}")}
    legacy = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'").fetchone()
    return {1} if legacy else set()


def upgrade(conn: sqlite3.Connection, catalog: Catalog, *, upto: int | None = None) -> list[int]:
    """Apply the pending steps (up to `upto`) inside the caller's write transaction; returns those applied."""
    done = applied(conn)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} (version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
                 " applied_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))")
    for version in done:  # a legacy file: record the step it already has
        conn.execute(f"INSERT OR IGNORE INTO {_TABLE} (version, name) VALUES (?, ?)",
                     (version, dict((v, n) for v, n, _ in STEPS)[version]))
    now: list[int] = []
    for version, name, step in STEPS:
        if version in done or (upto is not None and version > upto):
            continue
        step(conn, catalog)
        conn.execute(f"INSERT INTO {_TABLE} (version, name) VALUES (?, ?)", (version, name))
        now.append(version)
    gpkg.register_attributes(conn, _TABLE, "Schema steps applied to this file")
    return now


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The newest step applied, or None for a file never set up."""
    done = applied(conn)
    return max(done) if done else None


def expected_columns(layer: Layer) -> dict[str, str]:
    """The columns a layer's table must have: name -> declared SQLite type."""
    cols = {gpkg.ID_COLUMN: "INTEGER", gpkg.GEOM_COLUMN: gpkg.GEOMETRY_TYPE_NAMES[layer.geometry_type]}
    cols.update({p.name: gpkg.COLUMN_TYPES[p.type] for p in layer.properties})
    if layer.h3_cells:
        cols[h3cells.COLUMN] = "BLOB"
    return cols


def schema_drift(conn: sqlite3.Connection, catalog: Catalog) -> list[str]:
    """Every difference between the catalog's declarations and the file's tables (empty when they agree)."""
    problems: list[str] = []
    for layer in catalog:
        have = {row[1]: row[2].upper() for row in conn.execute(f"PRAGMA table_info({q(layer.id)})")}
        if not have:
            problems.append(f"table {layer.id!r} is missing")
            continue
        problems += _differences(layer.id, expected_columns(layer), have)
    for table in catalog.tables:
        have = {row[1]: row[2].upper() for row in conn.execute(f"PRAGMA table_info({q(table.id)})")}
        if not have:
            problems.append(f"table {table.id!r} is missing")
            continue
        want = {"id": "INTEGER", **{c.name: gpkg.COLUMN_TYPES[c.type] for c in table.columns}}
        problems += _differences(table.id, want, have)
    if LATEST > (schema_version(conn) or 0):
        problems.append(f"schema step {schema_version(conn)} of {LATEST}")
    return problems


LATEST = STEPS[-1][0]


def _differences(table: str, want: dict[str, str], have: dict[str, str]) -> list[str]:
    out = []
    for name, sqltype in want.items():
        if name not in have:
            out.append(f"{table}.{name} is missing (declared {sqltype})")
        elif have[name] != sqltype:
            out.append(f"{table}.{name} is {have[name]}, the catalog declares {sqltype}")
    out += [f"{table}.{name} exists but is not declared" for name in have.keys() - want.keys()]
    return out
