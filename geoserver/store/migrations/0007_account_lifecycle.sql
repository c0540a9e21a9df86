-- 0007: accounts that can be disabled and re-granted, API keys with a public id, failed-login counters.
-- auth_version goes up on every change to an account; a bearer token carries the version it was issued
-- under and stops working once the account has moved on (or is disabled).

ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN auth_version integer NOT NULL DEFAULT 1;

-- The id names a key in lists and revocations (the head of its hash); the key itself is never stored.
ALTER TABLE api_keys ADD COLUMN key_id text;
UPDATE api_keys SET key_id = left(key_hash, 16);
ALTER TABLE api_keys ALTER COLUMN key_id SET NOT NULL;
CREATE UNIQUE INDEX api_keys_key_id ON api_keys (key_id);
ALTER TABLE api_keys ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

-- Failed logins per subject ('user:<name>' or 'addr:<client address>') in the current window, shared by
-- every server process so the limits hold across them.
CREATE TABLE login_failures (
    subject  text PRIMARY KEY,
    failures integer NOT NULL,
    since    timestamptz NOT NULL
);
