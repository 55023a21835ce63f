-- Every tenant table is keyed by its tenant, so that a database with the `citus` extension
-- (distributed PostgreSQL) can hold each tenant's rows together on one node: the credential
-- tables' keys gain the tenant, as the log's and the projections' always had. Plain
-- PostgreSQL keeps the same schema; every lookup already names the tenant, except a browser's
-- session cookie, a connected app's refresh and the operator's `keys revoke`, which name only
-- their row (indexes below).

ALTER TABLE web_sessions DROP CONSTRAINT web_sessions_api_key_id_fkey;
ALTER TABLE oauth_grants DROP CONSTRAINT oauth_grants_key_id_fkey;

ALTER TABLE api_keys DROP CONSTRAINT api_keys_pkey, ADD PRIMARY KEY (tenant_id, id);
-- The operator revokes a key by its id alone.
CREATE INDEX api_keys_by_id ON api_keys (id);

ALTER TABLE web_sessions
    DROP CONSTRAINT web_sessions_pkey,
    ADD PRIMARY KEY (tenant_id, id),
    ADD FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_keys (tenant_id, id);
CREATE INDEX web_sessions_by_id ON web_sessions (id);
DROP INDEX web_sessions_by_key;
CREATE INDEX web_sessions_by_key ON web_sessions (tenant_id, api_key_id)
    WHERE api_key_id IS NOT NULL;

ALTER TABLE oauth_grants
    DROP CONSTRAINT oauth_grants_pkey,
    ADD PRIMARY KEY (tenant_id, key_id),
    ADD FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, id);
CREATE INDEX oauth_grants_by_key ON oauth_grants (key_id);

ALTER TABLE mcp_sessions DROP CONSTRAINT mcp_sessions_pkey, ADD PRIMARY KEY (tenant_id, id);

-- On Citus: tenant tables are distributed by tenant, colocated with `events` (a tenant's rows
-- of every table on the same node, so every statement naming one tenant runs on one node);
-- the few global tables are reference tables (a copy on every node). Nothing to configure:
-- the shard count is Citus's own setting (`citus.shard_count`).
DO $$
DECLARE
    tenant_tables text[] := ARRAY[
        'sessions', 'inbox', 'session_heartbeats', 'idempotency_keys', 'users', 'questions',
        'question_waits', 'inbox_presence', 'api_keys', 'web_sessions', 'oauth_grants',
        'mcp_sessions', 'notification_channels', 'notification_deliveries',
        'notification_attempts', 'notification_settings'];
    global_tables text[] := ARRAY[
        'projection_generation', 'oauth_clients', 'oauth_codes', 'login_links'];
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;
    -- One connection per node for this transaction's DDL, so it can be one transaction.
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- The append-only triggers run on every shard. Citus keeps TRUNCATE triggers on the
    -- coordinator's table only; distributing empties the coordinator's local copy by TRUNCATE,
    -- so that trigger comes back afterwards.
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    DROP TRIGGER events_no_truncate ON events;
    PERFORM create_distributed_table('events', 'tenant_id');
    PERFORM truncate_local_data_after_distributing_table('events');
    CREATE TRIGGER events_no_truncate
        BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
    FOREACH t IN ARRAY tenant_tables LOOP
        PERFORM create_distributed_table(t, 'tenant_id', colocate_with => 'events');
    END LOOP;
    FOREACH t IN ARRAY global_tables LOOP
        PERFORM create_reference_table(t);
    END LOOP;
    -- The rows now live in the shards; the coordinator's local copies are dead weight.
    FOREACH t IN ARRAY tenant_tables || global_tables LOOP
        PERFORM truncate_local_data_after_distributing_table(t);
    END LOOP;
    -- Called by statements that run on the workers.
    PERFORM create_distributed_function(
        'switchboard_liveness(text, timestamptz, timestamptz, timestamptz)');
    PERFORM create_distributed_function('switchboard_require_generation(bigint)');
END
$$;
