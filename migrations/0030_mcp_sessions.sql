-- MCP sessions: the `Mcp-Session-Id` a client gets from `initialize`, bound to the tenant that
-- opened it. Any node serves any session (a session holds no state but this row), and another
-- tenant's id answers like an unknown one.
CREATE TABLE mcp_sessions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    -- The API key that opened it, when there was one.
    key_id           uuid,
    -- `clientInfo.name` and `protocolVersion` from `initialize`.
    client_name      text        NOT NULL,
    protocol_version text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Set by DELETE; an ended session is unknown from then on.
    ended_at         timestamptz
);

CREATE INDEX mcp_sessions_by_tenant ON mcp_sessions (tenant_id, created_at);
