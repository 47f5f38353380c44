-- +goose Up
-- Times are timestamptz truncated to milliseconds by the driver before they are written.
-- Identity columns draw from sequences: an id is never handed out twice, even after its row is
-- deleted or its transaction rolled back.
CREATE TABLE accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));

CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint      NOT NULL REFERENCES accounts (id),
    prefix       text        NOT NULL,
    hash         bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE webhooks (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id                bigint      NOT NULL REFERENCES accounts (id),
    event                     text        NOT NULL,
    url                       text        NOT NULL,
    secret                    text        NOT NULL,
    alert_email               text,
    send_alert_email          boolean     NOT NULL,
    skip_errors               boolean     NOT NULL,
    skip_error_codes          text[]      NOT NULL DEFAULT '{}',
    retry_on_error            boolean     NOT NULL,
    max_throughput_per_minute integer     NOT NULL,
    status                    text        NOT NULL,
    version                   bigint      NOT NULL,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL
);
CREATE INDEX webhooks_account_event ON webhooks (account_id, event);

-- Event ids are opaque ASCII: the "C" collation compares them bytewise, the cheapest way.
CREATE TABLE events (
    id              text COLLATE "C" PRIMARY KEY,
    account_id      bigint      NOT NULL,
    type            text        NOT NULL,
    body            bytea       NOT NULL,
    idempotency_key text,
    deliveries      integer     NOT NULL,
    created_at      timestamptz NOT NULL
);
-- The unique index is what makes idempotency keys hold across concurrent publishers on several
-- nodes: INSERT … ON CONFLICT DO NOTHING waits for a concurrent insert of the same key.
CREATE UNIQUE INDEX events_idempotency ON events (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_idempotency_created ON events (created_at) WHERE idempotency_key IS NOT NULL;

-- deliveries is the queue: a pending row is due when next_attempt_at has passed. A claim moves
-- next_attempt_at to the end of its lease and sets lease_owner, so claimed rows leave the due
-- range and come back by themselves if their owner dies. Claims lock with FOR UPDATE SKIP LOCKED,
-- so nodes claiming at once take disjoint rows without waiting for each other.
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint           NOT NULL,
    webhook_id       bigint           NOT NULL,
    event_id         text COLLATE "C" NOT NULL,
    event            text             NOT NULL,
    status           text             NOT NULL
        CHECK (status IN ('pending', 'succeeded', 'failed', 'ignored', 'cancelled')),
    attempts         integer          NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    next_attempt_at  timestamptz,
    lease_owner      text,
    created_at       timestamptz      NOT NULL,
    completed_at     timestamptz
);
-- Every claim and every outcome leaves a dead row version behind, and dead entries at the old
-- end of deliveries_due are what claims wade through until vacuum removes them: vacuum and
-- analyze this table sooner than the default 20% / 10% of its rows.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_completed ON deliveries (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   bigint      NOT NULL,
    attempt       integer     NOT NULL,
    at            timestamptz NOT NULL,
    status_code   integer,
    duration_ms   bigint      NOT NULL,
    error         text,
    response_body text
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- +goose Down
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE webhooks;
DROP TABLE api_keys;
DROP TABLE accounts;
