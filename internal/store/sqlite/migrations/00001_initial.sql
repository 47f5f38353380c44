-- +goose Up
-- Times are integer milliseconds since the Unix epoch (UTC).
-- AUTOINCREMENT: an id is never handed out twice, even after its row is deleted.
CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE webhooks (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id                INTEGER NOT NULL REFERENCES accounts (id),
    event                     TEXT    NOT NULL,
    url                       TEXT    NOT NULL,
    secret                    TEXT    NOT NULL,
    alert_email               TEXT,
    send_alert_email          INTEGER NOT NULL,
    skip_errors               INTEGER NOT NULL,
    skip_error_codes          TEXT    NOT NULL, -- JSON array of strings
    retry_on_error            INTEGER NOT NULL,
    max_throughput_per_minute INTEGER NOT NULL,
    status                    TEXT    NOT NULL,
    version                   INTEGER NOT NULL,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
);
CREATE INDEX webhooks_account_event ON webhooks (account_id, event);

CREATE TABLE events (
    id              TEXT    PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    idempotency_key TEXT,
    deliveries      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_created ON events (created_at);
CREATE INDEX events_idempotency_created ON events (created_at) WHERE idempotency_key IS NOT NULL;

-- deliveries is the queue: a pending row is due when next_attempt_at has passed. A claim moves
-- next_attempt_at to the end of its lease and sets lease_owner, so claimed rows leave the due
-- range and come back by themselves if their owner dies.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       INTEGER NOT NULL,
    webhook_id       INTEGER NOT NULL,
    event_id         TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    lease_owner      TEXT,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_completed ON deliveries (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    status_code   INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT,
    response_body TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- +goose Down
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE webhooks;
DROP TABLE api_keys;
DROP TABLE accounts;
