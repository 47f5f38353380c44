-- +goose Up
-- An event's deliveries that no engine has leased yet are stored as one row per event, its
-- fan-out, until a claim takes them: the claim writes their delivery rows, leased. A publish
-- then writes three b-tree entries per event (the event, its id, its fan-out) instead of the
-- event's two and two rows and two index entries for each delivery. Delivery i of a fan-out
-- (from 0) has the id first_delivery + i and goes to webhooks[i]. sqlite/fanouts.go reads and
-- writes them; every query of deliveries that needs them writes their rows first.
CREATE TABLE fanouts (
    first_delivery INTEGER PRIMARY KEY,
    deliveries     INTEGER NOT NULL,
    account_id     INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    webhooks       TEXT    NOT NULL -- JSON array of webhook ids
);

-- +goose Down
INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, created_at, next_attempt_at, status)
    SELECT f.first_delivery + j.key, f.account_id, j.value, f.event_id, f.event, f.created_at, f.created_at, 'pending'
    FROM fanouts f, json_each(f.webhooks) j ORDER BY f.first_delivery, j.key;
DROP TABLE fanouts;
