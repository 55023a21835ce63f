-- Responses to requests that carried an Idempotency-Key, kept forever so that a retry, however
-- late, returns the first response and appends nothing. Written in the append's transaction.
CREATE TABLE idempotency_keys (
    tenant_id   uuid        NOT NULL,
    key         text        NOT NULL,
    command     text        NOT NULL,
    -- SHA-256 of the request: the same key with a different request is refused.
    fingerprint bytea       NOT NULL,
    response    json        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
