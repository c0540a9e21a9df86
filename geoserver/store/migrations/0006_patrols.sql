-- Patrol work (layers/patrol_work.py): a patrol's task, its last activity (for the auto-close job) and how
-- it ended; each fix's heading, altitude, battery and its upload key, unique within its patrol, so a batch
-- sent twice stores every fix once.
ALTER TABLE patrols ADD COLUMN task_id bigint, ADD COLUMN last_fix_at timestamptz, ADD COLUMN close_reason text;
CREATE INDEX patrols_open ON patrols (last_fix_at) WHERE status = 'active';
ALTER TABLE track_points ADD COLUMN heading double precision, ADD COLUMN altitude double precision,
    ADD COLUMN battery double precision, ADD COLUMN point_key text;
CREATE UNIQUE INDEX track_points_patrol_key ON track_points (patrol_id, point_key);
