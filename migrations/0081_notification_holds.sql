-- A delivery the policy holds is marked `held` (a claim clears it), so that holds never touch
-- the fencing token (`claims` only grows) and new requests of its session join only a held
-- notification, never one being sent. `told_seq`: the newest request a sent notification of
-- requests told of (the tenant sequence number it was asked at), so that a later notification
-- of the same session and channel that it already covered is not sent again.
-- `holds` counts the claims given back without an attempt, so that an attempt's number stays
-- its claim's among those that made one (a process that died mid-attempt leaves a gap).
ALTER TABLE notification_deliveries
    ADD COLUMN held     boolean NOT NULL DEFAULT false,
    ADD COLUMN holds    integer NOT NULL DEFAULT 0,
    ADD COLUMN told_seq bigint;

DROP INDEX notification_deliveries_unsent_requests;
CREATE INDEX notification_deliveries_held_requests
    ON notification_deliveries (tenant_id, channel_id, session_id)
    WHERE status = 'pending' AND held AND trigger = 'question';
