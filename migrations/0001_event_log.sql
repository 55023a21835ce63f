-- The event log: the only source of truth. Everything else in this database is derived
-- from it (projections) or is bookkeeping that carries no conversation (keys, presence).
--
-- Appends are optimistic single statements: a writer inserts seq = (the head it knows) + 1 and
-- stream_version = (the session version it decided on) + 1. The primary key and the stream
-- version key make any stale decision fail as a unique violation (the writer reloads and
-- decides again), so each tenant's seq is gap-free and in commit order: seq N+1 can only be
-- inserted by a writer that saw N committed.

CREATE TABLE events (
    tenant_id      uuid        NOT NULL,
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
    -- The appending transaction. Readers across tenants go in txid order and stop below the
    -- oldest transaction still running (pg_snapshot_xmin), so a commit that lands later never
    -- lands behind them; a global insertion counter could not promise that.
    -- (xid8 as bigint: xid8 has no BRIN operator class.)
    txid           bigint      NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (tenant_id, seq),
    CONSTRAINT events_tenant_event_id_key UNIQUE (tenant_id, event_id),
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_id, stream_version),
    CONSTRAINT events_seq_positive CHECK (seq > 0),
    CONSTRAINT events_version_positive CHECK (stream_version > 0),
    CONSTRAINT events_hash_length CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32)
);

-- txid only grows, so a tiny BRIN index serves cross-tenant readers.
CREATE INDEX events_txid ON events USING brin (txid);

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
