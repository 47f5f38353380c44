-- +goose Up
-- Deleted webhooks whose pending deliveries are still being cancelled (cancelDeleted): until it
-- is done, a read shows those with ids up to up_to as cancelled at deleted_at. A row outlives
-- its cancelling only when the store closed first; Open resumes the cancelling from it.
CREATE TABLE webhook_deletions (
    webhook_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    up_to      INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE webhook_deletions;
