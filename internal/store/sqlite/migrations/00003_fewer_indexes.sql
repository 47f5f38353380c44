-- +goose Up
-- Fewer index writes per delivery (the store's single writer is the pipeline's bottleneck):
-- attempts keyed by (delivery_id, attempt, at) in a table without rowid (one b-tree, not two);
-- no index on deliveries.event_id (pruning counts an event's remaining deliveries instead);
-- no index on deliveries.completed_at (pruning walks the oldest ids, which are the oldest rows).
CREATE TABLE attempts_new (
    delivery_id   INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    status_code   INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT,
    response_body TEXT,
    PRIMARY KEY (delivery_id, attempt, at)
) WITHOUT ROWID;
INSERT OR IGNORE INTO attempts_new SELECT delivery_id, attempt, at, status_code, duration_ms, error, response_body FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;

ALTER TABLE events ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
UPDATE events SET live = (SELECT count(*) FROM deliveries d WHERE d.event_id = events.id);
DROP INDEX deliveries_event;
DROP INDEX deliveries_completed;

-- +goose Down
CREATE INDEX deliveries_completed ON deliveries (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX deliveries_event ON deliveries (event_id);
ALTER TABLE events DROP COLUMN live;
CREATE TABLE attempts_old (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    status_code   INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT,
    response_body TEXT
);
INSERT INTO attempts_old (delivery_id, attempt, at, status_code, duration_ms, error, response_body)
    SELECT delivery_id, attempt, at, status_code, duration_ms, error, response_body FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_old RENAME TO attempts;
CREATE INDEX attempts_delivery ON attempts (delivery_id);
