-- +goose Up
-- Webhook health, kept by the delivery engine, and the alert coalescing state (JSON).
ALTER TABLE webhooks ADD COLUMN last_delivery_at INTEGER;
ALTER TABLE webhooks ADD COLUMN last_success_at INTEGER;
ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
ALTER TABLE webhooks ADD COLUMN failing_deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;
ALTER TABLE webhooks ADD COLUMN alert_state TEXT NOT NULL DEFAULT '{}';
-- The last alert's time while failures wait to be reported (NULL otherwise), for AlertsDue.
ALTER TABLE webhooks ADD COLUMN alert_wait_from INTEGER;
CREATE INDEX webhooks_alert_wait ON webhooks (alert_wait_from) WHERE alert_wait_from IS NOT NULL;

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       INTEGER NOT NULL,
    webhook_id       INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    recipient        TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    failures         INTEGER NOT NULL,
    first_failure_at INTEGER,
    last_failure_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    events           TEXT    NOT NULL, -- JSON array of event types
    reason           TEXT,
    state            TEXT    NOT NULL,
    tries            INTEGER NOT NULL DEFAULT 0,
    next_try_at      INTEGER,
    lease_owner      TEXT,
    send_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX alerts_webhook ON alerts (webhook_id, id);
CREATE INDEX alerts_due ON alerts (next_try_at) WHERE state = 'pending';
CREATE INDEX alerts_created ON alerts (created_at);

-- +goose Down
DROP TABLE alerts;
DROP INDEX webhooks_alert_wait;
ALTER TABLE webhooks DROP COLUMN alert_wait_from;
ALTER TABLE webhooks DROP COLUMN alert_state;
ALTER TABLE webhooks DROP COLUMN disabled_reason;
ALTER TABLE webhooks DROP COLUMN failing_deliveries;
ALTER TABLE webhooks DROP COLUMN failing_since;
ALTER TABLE webhooks DROP COLUMN consecutive_failures;
ALTER TABLE webhooks DROP COLUMN last_success_at;
ALTER TABLE webhooks DROP COLUMN last_delivery_at;
