-- Idempotency keys (the Idempotency-Key header): one row per (owner, endpoint, key), shared by every
-- server process. A row without a response is a request still in progress (a claim); its response is the
-- one replayed to every retry with the same key and the same request.
CREATE TABLE idempotency_keys (
    owner        text NOT NULL,
    endpoint     text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, endpoint, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
