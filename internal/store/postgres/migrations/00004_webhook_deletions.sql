-- +goose Up
-- Deleted webhooks whose pending deliveries are still being cancelled (see deleteWebhook): a
-- read shows such a delivery as cancelled at deleted_at. A row outlives its cancelling only when
-- the node doing it stopped first; Prune drops it once none of the webhook's deliveries is
-- pending.
CREATE TABLE webhook_deletions (
    webhook_id bigint PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE webhook_deletions;
