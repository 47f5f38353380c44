-- +goose Up
-- The throughput windows of webhooks, shared by all nodes: each row is a grant of slots to a
-- node; its slots count in the webhook's window until "until" (see store.Shared).
CREATE TABLE window_slots (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id bigint      NOT NULL,
    slots      integer     NOT NULL,
    until      timestamptz NOT NULL
);
CREATE INDEX window_slots_webhook ON window_slots (webhook_id, until);

-- +goose Down
DROP TABLE window_slots;
