-- +goose Up
-- Events are pruned by rowid, the order the writer inserted them in, as deliveries are: the
-- index on created_at cost every published event an index insert on the store's single writer.
DROP INDEX events_created;

-- +goose Down
CREATE INDEX events_created ON events (created_at);
