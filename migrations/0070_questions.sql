-- Questions are first-class: every request an agent made of its person (a question, a tool
-- approval, "what next?"), and whether it is open, answered, withdrawn or expired. Derived from
-- the log by the session fold, like `sessions` and `inbox`, and rebuilt with them. Ids and times
-- only: what was asked and answered stays in the log (the events named by `id` and `answer_id`).
CREATE TABLE questions (
    tenant_id  uuid        NOT NULL,
    session_id uuid        NOT NULL,
    -- The agent message that asks it.
    id         uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('question', 'approval', 'next_instruction')),
    status     text        NOT NULL CHECK (status IN ('open', 'answered', 'withdrawn', 'expired')),
    asked_at   timestamptz NOT NULL,
    asked_seq  bigint      NOT NULL,
    expires_at timestamptz,
    closed_at  timestamptz,
    closed_seq bigint,
    closed_by  text        CHECK (closed_by IN ('agent', 'user', 'system')),
    answer_id  uuid,
    reason     text,
    PRIMARY KEY (tenant_id, session_id, id)
);

-- The sweeper finds questions whose deadline passed.
CREATE INDEX questions_expiring ON questions (expires_at)
    WHERE status = 'open' AND expires_at IS NOT NULL;

-- What a session is about and where its agent runs (`session_described`), and how many of its
-- questions are open (it awaits input exactly while that is above zero).
ALTER TABLE sessions
    ADD COLUMN open_questions integer NOT NULL DEFAULT 0,
    ADD COLUMN title   text,
    ADD COLUMN project text,
    ADD COLUMN cwd     text,
    ADD COLUMN branch  text,
    ADD COLUMN host    text,
    ADD COLUMN client  text,
    -- When the agent's process exited (`agent_exited`), until it speaks again.
    ADD COLUMN exited_at timestamptz;

-- Presence, not conversation (like heartbeats): who waits for a question's answer right now.
-- A wait records until when it waits; a call its client abandoned records when, and the
-- sweeper withdraws the question if nobody waits for it again within the grace period.
CREATE TABLE question_waits (
    tenant_id     uuid        NOT NULL,
    session_id    uuid        NOT NULL,
    question_id   uuid        NOT NULL,
    waiting_until timestamptz NOT NULL,
    abandoned_at  timestamptz,
    PRIMARY KEY (tenant_id, session_id, question_id)
);

CREATE INDEX question_waits_abandoned ON question_waits (abandoned_at)
    WHERE abandoned_at IS NOT NULL;

-- A question's notification names the question; whether it is still worth sending is the
-- question's status, read from `questions`.
ALTER TABLE notification_deliveries ADD COLUMN question_id uuid;

-- Which version of the fold wrote the projections. A binary whose fold reads the log
-- differently rebuilds them once, on start, when the log is not empty.
ALTER TABLE projection_generation ADD COLUMN fold_version integer NOT NULL DEFAULT 1;

-- How a session is doing, for people, and the one rule for it: ended; waiting for its person
-- (questions are open); exited (its agent's process ended; it may run again); idle (no sign of
-- life from its agent, a message or a heartbeat, since `idle_before`); else working. Every read
-- that shows or filters sessions by it calls this.
CREATE FUNCTION switchboard_liveness(status text, last_seen timestamptz, idle_before timestamptz,
                                     exited_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN status = 'COMPLETED' THEN 'ended'
        WHEN status = 'AWAITING_INPUT' THEN 'waiting'
        WHEN exited_at IS NOT NULL THEN 'exited'
        WHEN last_seen < idle_before THEN 'idle'
        ELSE 'working'
    END
$$;
