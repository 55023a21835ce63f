-- The event log: the only source of truth. Everything else in this database is derived
-- from it (projections) or is bookkeeping that carries no conversation (keys, presence).

-- One row per tenant (user). Appends lock this row: that serialises a tenant's appends, so
-- `seq` and the hash chain are gap-free and in commit order.
CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0,
    last_hash  bytea  NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    -- Global insertion order across tenants. Not gap-free and not commit-ordered: readers
    -- across tenants pair it with `txid` (see the export query), never with `> last_seen` alone.
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    seq            bigint      NOT NULL,
    stream_id      uuid        NOT NULL,
    stream_version integer     NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    -- `json`, not `jsonb`: the bytes are kept exactly as appended, so the hash covers
    -- precisely what is stored and an auditor can recompute it from an export.
    data           json        NOT NULL,
    metadata       json        NOT NULL,
    recorded_at    timestamptz NOT NULL,
    txid           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    CONSTRAINT events_tenant_seq_key UNIQUE (tenant_id, seq),
    CONSTRAINT events_tenant_event_id_key UNIQUE (tenant_id, event_id),
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_id, stream_version),
    CONSTRAINT events_seq_positive CHECK (seq > 0),
    CONSTRAINT events_version_positive CHECK (stream_version > 0),
    CONSTRAINT events_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32)
);

-- Append-only in the database itself, whatever the client.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
