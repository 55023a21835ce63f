-- A channel's health is how its latest finished delivery ended: the inbox warns when a
-- channel's notifications stopped arriving (its latest delivery failed) until one gets through
-- again or the channel is removed. This finds that delivery with one index probe per channel.
CREATE INDEX notification_deliveries_finished
    ON notification_deliveries (tenant_id, channel_id, finished_at)
    WHERE status IN ('delivered', 'failed');
