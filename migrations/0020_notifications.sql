-- Notifications: the log is the outbox. A consumer reads each tenant's log from a cursor per
-- channel and turns what should reach a person into delivery rows; deliverers claim due rows
-- (a lease: a claimed row is not due again until the lease ends, so a process that dies
-- mid-delivery leaves the row to another), send, and record every attempt. Nothing here is
-- written by an append: delivery never slows one down.

-- Where a tenant's people are reached. The secret parts (the webhook signing secret, a push
-- subscription's keys) and the target live here and never in the event log.
CREATE TABLE notification_channels (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('webhook', 'email', 'web_push')),
    -- Safe to show and to record: the webhook's host, the push service, the mailbox's domain.
    description text        NOT NULL,
    -- The webhook URL, the email address, the push endpoint.
    target      text        NOT NULL,
    -- {"whsec": ...} for webhooks, {"p256dh": ..., "auth": ...} for web push; wiped on removal.
    secret      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The tenant sequence numbers of the notification_channel_added / _removed events on the
    -- account stream. A channel is in use from its added event (a row whose event was never
    -- appended, after a crash in between, is never used) until it is removed.
    added_seq   bigint,
    removed_at  timestamptz,
    removed_seq bigint,
    -- The consumer's cursor: the tenant's events up to this sequence number have been turned
    -- into deliveries for this channel. A tenant's sequence is gap-free and in commit order,
    -- so "seq > cursor" never skips an event that commits late.
    cursor_seq  bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One notification to one channel. Its id is derived from the channel and the triggering
-- event (the webhook-id receivers deduplicate on), so consuming an event twice inserts nothing.
CREATE TABLE notification_deliveries (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    channel_id      uuid        NOT NULL,
    session_id      uuid,
    -- The triggering event (the agent message, or the input request); none for a test.
    event_id        uuid,
    event_seq       bigint,
    event_at        timestamptz NOT NULL,
    -- question | message | session_ended | test
    trigger         text        NOT NULL,
    -- For a question: a reply or the session's end after this sequence number answers it.
    question_seq    bigint,
    -- What is sent (text truncated, ids, flags); never a secret.
    payload         jsonb       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    -- Claims so far: the fencing token of the newest claim, and the number of its attempt.
    claims          integer     NOT NULL DEFAULT 0,
    -- Due when pending and this has passed; a claim moves it to the end of the lease.
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_deliveries_by_tenant ON notification_deliveries (tenant_id, created_at);
-- Coalescing looks up the newest notification of a session on a channel.
CREATE INDEX notification_deliveries_by_session
    ON notification_deliveries (tenant_id, channel_id, session_id, event_at);

-- Every attempt, as it ended.
CREATE TABLE notification_attempts (
    tenant_id   uuid        NOT NULL,
    delivery_id uuid        NOT NULL,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    -- The receiver's HTTP status (webhook, push) or SMTP reply code, when it answered.
    status_code integer,
    error       text,
    PRIMARY KEY (tenant_id, delivery_id, attempt)
);

-- A tenant's choices; no row means the defaults.
CREATE TABLE notification_settings (
    tenant_id uuid    PRIMARY KEY,
    -- Notify every channel when an agent asks a question (flags on messages still count).
    questions boolean NOT NULL
);
