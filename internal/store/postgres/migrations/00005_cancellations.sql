-- +goose Up
-- webhook_deletions becomes cancellations: the webhooks deleted or disabled whose pending
-- deliveries are still being cancelled behind the change (see cancelBehind). A delete covers
-- every delivery of its webhook (up_to NULL), a disable those it found (ids up to up_to):
-- deliveries published while the webhook stays disabled are stored cancelled, and those
-- published once it is enabled again are not covered. Cancelling goes in id order; reached is
-- the last id it went through.
ALTER TABLE webhook_deletions RENAME TO cancellations;
ALTER TABLE cancellations RENAME COLUMN deleted_at TO at;
ALTER TABLE cancellations ADD COLUMN reason text NOT NULL DEFAULT 'webhook deleted';
ALTER TABLE cancellations ADD COLUMN up_to bigint;
ALTER TABLE cancellations ADD COLUMN reached bigint NOT NULL DEFAULT 0;

-- Nodes of the version before this migration may run beside it during a rolling upgrade: they
-- record, read and drop deletions in webhook_deletions, and this view, which PostgreSQL updates
-- through, keeps that working (reason's default is theirs). A later migration drops it, once no
-- such node can be left.
CREATE VIEW webhook_deletions AS
SELECT webhook_id, at AS deleted_at FROM cancellations WHERE up_to IS NULL;

-- delivery_reads is deliveries as reads show them: a pending delivery that a cancellation
-- covers reads as its cancelling will leave it.
CREATE VIEW delivery_reads AS
SELECT d.id, d.account_id, d.webhook_id, d.event_id, d.event,
    CASE WHEN c.webhook_id IS NULL THEN d.status ELSE 'cancelled' END AS status,
    d.attempts, d.last_status_code,
    CASE WHEN c.webhook_id IS NULL THEN d.last_error ELSE c.reason END AS last_error,
    CASE WHEN c.webhook_id IS NULL THEN d.next_attempt_at END AS next_attempt_at,
    d.created_at,
    CASE WHEN c.webhook_id IS NULL THEN d.completed_at ELSE c.at END AS completed_at
FROM deliveries d
LEFT JOIN cancellations c ON c.webhook_id = d.webhook_id AND d.status = 'pending'
    AND (c.up_to IS NULL OR d.id <= c.up_to);

-- +goose Down
DROP VIEW delivery_reads;
DROP VIEW webhook_deletions;
ALTER TABLE cancellations DROP COLUMN reached;
ALTER TABLE cancellations DROP COLUMN up_to;
ALTER TABLE cancellations DROP COLUMN reason;
ALTER TABLE cancellations RENAME COLUMN at TO deleted_at;
ALTER TABLE cancellations RENAME TO webhook_deletions;
