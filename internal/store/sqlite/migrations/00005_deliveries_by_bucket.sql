-- +goose Up
-- A webhook's deliveries are found through buckets of 1,024 consecutive delivery ids, ordered by
-- webhook inside each, instead of one index ordered by webhook. That index took every delivery's
-- entry at its webhook's place in the middle of the index, so each commit rewrote about one
-- page per webhook it touched. New entries now land in the last bucket or two, a few pages: on
-- the EPYC machine publishing went from 36,400 to 48,300 events/s (means of three runs each).
-- A listing searches the buckets newest first, one index search each (sqlite/deliveries.go);
-- the 10 in (id >> 10) is written the same there.
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_webhook_bucket ON deliveries ((id >> 10), webhook_id, account_id);

-- +goose Down
DROP INDEX deliveries_webhook_bucket;
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
