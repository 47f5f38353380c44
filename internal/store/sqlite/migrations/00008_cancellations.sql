-- +goose Up
-- webhook_deletions becomes cancellations: it records disables too (see cancelAfter), each with
-- the reason its deliveries are cancelled for. A disable covers the deliveries up to up_to, those
-- its webhook had, as a delete does; deliveries published while it stays disabled are stored
-- cancelled, and enabling it again finishes a cancelling still under way.
ALTER TABLE webhook_deletions RENAME TO cancellations;
ALTER TABLE cancellations RENAME COLUMN deleted_at TO at;
ALTER TABLE cancellations ADD COLUMN reason TEXT NOT NULL DEFAULT 'webhook deleted';

-- +goose Down
ALTER TABLE cancellations DROP COLUMN reason;
ALTER TABLE cancellations RENAME COLUMN at TO deleted_at;
ALTER TABLE cancellations RENAME TO webhook_deletions;
