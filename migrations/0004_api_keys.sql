-- API keys are JWTs whose `jti` names a row here. The token itself is never stored, only its
-- SHA-256; revoking a key makes every token naming it invalid at once on every node (the
-- revoking transaction notifies `switchboard_keys`, which clears each node's key cache).
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    name         text        NOT NULL,
    scope        text        NOT NULL CHECK (scope IN ('agent', 'audit')),
    token_sha256 bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    -- Maintained in batches, not per request.
    last_used_at timestamptz
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);
