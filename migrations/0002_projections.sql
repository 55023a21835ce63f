-- Read models derived from the event log. They are written only by the fold in the
-- `projections` crate, inline in each append's transaction, and can be dropped and rebuilt
-- from the log at any time (`switchboard projections rebuild`).

CREATE TABLE sessions (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    agent_type       text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('ACTIVE', 'AWAITING_INPUT', 'COMPLETED')),
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    last_activity_at timestamptz NOT NULL,
    git_diff         text,
    version          integer     NOT NULL,
    last_seq         bigint      NOT NULL,
    step_count       integer     NOT NULL,
    read_cursor      uuid,
    unread_count     integer     NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 70);
-- Every append updates its session's row. No index covers a column that changes, and pages
-- keep free space, so those updates stay HOT (no index writes). Listing a tenant's sessions
-- by activity reads its rows through the primary key and sorts them.

-- User messages the agent has not received yet, per session, oldest first.
CREATE TABLE inbox (
    tenant_id      uuid        NOT NULL,
    session_id     uuid        NOT NULL,
    stream_version integer     NOT NULL,
    message_id     uuid        NOT NULL,
    seq            bigint      NOT NULL,
    content        text        NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, session_id, stream_version)
);

-- Presence, not conversation: heartbeats are not events and are not rebuilt.
CREATE TABLE session_heartbeats (
    tenant_id         uuid        NOT NULL,
    session_id        uuid        NOT NULL,
    last_heartbeat_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, session_id)
);
