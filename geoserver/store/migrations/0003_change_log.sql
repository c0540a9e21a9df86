-- The change log (an outbox): every committed write appends its rows here in the writing transaction.
-- seq is strictly increasing and becomes visible in order (writers append last, under an advisory lock);
-- every server process reads the rows after the last seq it has seen (woken by NOTIFY onemap_changes).
CREATE TABLE changes (
    seq             bigserial PRIMARY KEY,
    layer           text NOT NULL,
    fid             bigint,
    op              text NOT NULL,
    township_before text,
    township_after  text,
    bbox_before     double precision[],
    bbox_after      double precision[],
    properties      jsonb NOT NULL DEFAULT '{}',
    actor           text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_at ON changes (at);

-- Background jobs: one row per job; the process whose lease is live runs it, another takes over once the
-- lease has expired (its holder died).
CREATE TABLE job_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
