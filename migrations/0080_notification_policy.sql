-- The notification policy is a fact of the account (`notification_policy_changed` events);
-- `notification_settings.questions` stays as what tenants chose before it, read until their
-- first change.

-- Presence, not conversation (like heartbeats): an inbox open and focused on one of the
-- person's devices (a web session, or a dashboard's key) keeps push waiting until
-- `focused_until`, which the page renews while it stays focused.
CREATE TABLE inbox_presence (
    tenant_id     uuid        NOT NULL,
    device_id     uuid        NOT NULL,
    focused_until timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);

-- A new request of a session looks for an unsent notification of it to join.
CREATE INDEX notification_deliveries_unsent_requests
    ON notification_deliveries (tenant_id, channel_id, session_id)
    WHERE status = 'pending' AND claims = 0 AND trigger = 'question';
