-- +goose Up
-- Webhook health, kept by the delivery engine, and the alert coalescing state. Added columns
-- are NULL or have a constant default, so adding them rewrites nothing.
ALTER TABLE webhooks
    ADD COLUMN last_delivery_at     timestamptz,
    ADD COLUMN last_success_at      timestamptz,
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN failing_since        timestamptz,
    ADD COLUMN failing_deliveries   integer NOT NULL DEFAULT 0,
    ADD COLUMN disabled_reason      text,
    -- store.AlertState as JSON, times in milliseconds since the epoch (the SQLite driver's form).
    ADD COLUMN alert_state          jsonb   NOT NULL DEFAULT '{}',
    -- The last alert's time while failures wait to be reported (NULL otherwise), for AlertsDue.
    ADD COLUMN alert_wait_from      timestamptz;
-- Every active webhook's row is now updated about once a second: leave room on each page so
-- those updates can stay on the page (HOT) instead of adding index entries. This applies to
-- pages filled from now on.
ALTER TABLE webhooks SET (fillfactor = 80);
CREATE INDEX webhooks_alert_wait ON webhooks (alert_wait_from) WHERE alert_wait_from IS NOT NULL;
-- Not for lookups: a unique index makes status a key column, so an UPDATE that changes it takes
-- the FOR UPDATE row lock, which conflicts with the FOR KEY SHARE of publishes (as a key change
-- conflicts with a foreign key check). A publish racing a disable therefore either commits
-- before the disable cancels pending deliveries, or reads the webhook as disabled; without it a
-- publish could lock the old row version and store a pending delivery after the cancel. Updates
-- that leave status alone (health, settings) stay non-key and do not hold up publishes.
CREATE UNIQUE INDEX webhooks_id_status ON webhooks (id, status);

-- alerts is a queue too, leased like deliveries: a claim moves next_try_at to the end of its
-- lease and sets lease_owner; FinishAlert is fenced by lease_owner.
CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint      NOT NULL,
    webhook_id       bigint      NOT NULL,
    kind             text        NOT NULL,
    recipient        text        NOT NULL,
    url              text        NOT NULL,
    event            text        NOT NULL,
    failures         integer     NOT NULL,
    first_failure_at timestamptz,
    last_failure_at  timestamptz,
    last_status_code integer,
    last_error       text,
    events           text[]      NOT NULL DEFAULT '{}', -- event types of the failed deliveries
    reason           text,
    state            text        NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'logged')),
    tries            integer     NOT NULL DEFAULT 0,
    next_try_at      timestamptz,
    lease_owner      text,
    send_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX alerts_webhook ON alerts (webhook_id, id);
CREATE INDEX alerts_due ON alerts (next_try_at) WHERE state = 'pending';
CREATE INDEX alerts_created ON alerts (created_at);

-- +goose Down
DROP TABLE alerts;
DROP INDEX webhooks_id_status;
DROP INDEX webhooks_alert_wait;
ALTER TABLE webhooks RESET (fillfactor);
ALTER TABLE webhooks
    DROP COLUMN alert_wait_from,
    DROP COLUMN alert_state,
    DROP COLUMN disabled_reason,
    DROP COLUMN failing_deliveries,
    DROP COLUMN failing_since,
    DROP COLUMN consecutive_failures,
    DROP COLUMN last_success_at,
    DROP COLUMN last_delivery_at;
