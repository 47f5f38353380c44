package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

func (s *Store) Claim(ctx context.Context, p store.ClaimParams) ([]store.Job, error) {
	var jobs []store.Job
	err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
		jobs = jobs[:0]
		if err := s.claimInOrder(ctx, tx, p, &jobs); err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		// The versions of the claimed deliveries' webhooks, one query per 500 of them. A claim
		// from a backlog spread over 10,000 webhooks meets up to a thousand: with a query
		// each, BenchmarkClaimSpread's claim of 1,000 deliveries to 1,000 webhooks took
		// 11.7 – 13.2 ms, and 7.2 – 8.7 ms so.
		versions := map[int64]int64{}
		var ids []int64
		for _, j := range jobs {
			if _, ok := versions[j.WebhookID]; !ok {
				versions[j.WebhookID] = 0 // a deleted webhook's, as before: no row
				ids = append(ids, j.WebhookID)
			}
		}
		err := queryIn(ctx, tx, ids, func(marks string) string {
			return `SELECT id, version FROM webhooks WHERE id IN (` + marks + `)`
		}, func(rows *sql.Rows) error {
			var id, v int64
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			versions[id] = v
			return nil
		})
		if err != nil {
			return fmt.Errorf("claim deliveries: webhook versions: %w", err)
		}
		for i, j := range jobs {
			jobs[i].WebhookVersion = versions[j.WebhookID]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

func (s *Store) Complete(ctx context.Context, outcomes []store.Outcome) error {
	return s.writeKeeping(ctx, func(tx *sql.Tx) error {
		var completeArgs, succeededArgs, attemptArgs []any
		var owner string // of the outcomes in succeededArgs
		seen := make(map[int64]bool, len(outcomes))
		for _, o := range outcomes {
			var attempted int
			var code, errText any
			if a := o.Attempt; a != nil {
				attempted = 1
				code, errText = nullInt(a.StatusCode), nullString(a.Error)
				attemptArgs = append(attemptArgs, o.DeliveryID, a.Attempt, ms(a.At), code, a.DurationMs, errText, nullString(a.ResponseBody))
			} else {
				errText = nullString(o.Error)
			}
			// Applied one by one, a second outcome for a delivery would find its lease gone:
			// the first one wins.
			if seen[o.DeliveryID] {
				continue
			}
			seen[o.DeliveryID] = true
			// Most outcomes are a success of the engine's: they take the statement that binds
			// three values each, not eight.
			if o.Status == store.StatusSucceeded && attempted == 1 && errText == nil && (owner == "" || o.Owner == owner) {
				owner = o.Owner
				succeededArgs = append(succeededArgs, o.DeliveryID, code, ms(o.At))
				continue
			}
			var next, completed any
			if o.Status == store.StatusPending {
				next = ms(o.NextAttemptAt)
			} else {
				completed = ms(o.At)
			}
			completeArgs = append(completeArgs, o.DeliveryID, o.Owner, o.Status, attempted, code, errText, next, completed)
		}
		if err := s.stmts.insertAttempts.run(ctx, tx, nil, attemptArgs); err != nil {
			return fmt.Errorf("insert attempts: %w", err)
		}
		if err := s.stmts.completeSucceeded.run(ctx, tx, []any{owner}, succeededArgs); err != nil {
			return fmt.Errorf("complete deliveries: %w", err)
		}
		if err := s.stmts.complete.run(ctx, tx, nil, completeArgs); err != nil {
			return fmt.Errorf("complete deliveries: %w", err)
		}
		return nil
	})
}

func (s *Store) Release(ctx context.Context, owner string, now time.Time) error {
	return s.writeKeeping(ctx, func(tx *sql.Tx) error {
		var err error
		if owner == "" {
			_, err = tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, lease_owner = NULL
				WHERE status = 'pending' AND next_attempt_at > ? AND lease_owner IS NOT NULL`, ms(now), ms(now))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, lease_owner = NULL
				WHERE status = 'pending' AND next_attempt_at > ? AND lease_owner = ?`, ms(now), ms(now), owner)
		}
		if err != nil {
			return fmt.Errorf("release leases: %w", err)
		}
		return nil
	})
}

const deliveryColumns = `id, account_id, webhook_id, event_id, event, status, attempts, last_status_code, last_error,
	next_attempt_at, created_at, completed_at`

func scanDelivery(row interface{ Scan(...any) error }) (store.Delivery, error) {
	var d store.Delivery
	var code, next, completed sql.NullInt64
	var lastErr sql.NullString
	var created int64
	err := row.Scan(&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.Event, &d.Status, &d.Attempts, &code, &lastErr,
		&next, &created, &completed)
	if err != nil {
		return d, err
	}
	d.LastStatusCode, d.LastError = int(code.Int64), lastErr.String
	d.NextAttemptAt, d.CreatedAt, d.CompletedAt = fromMs(next.Int64), fromMs(created), fromMs(completed.Int64)
	return d, nil
}

func (s *Store) GetDelivery(ctx context.Context, accountID, id int64) (store.Delivery, []store.Attempt, error) {
	deleting := s.deletions() // before the reads: see deletions
	// The fan-outs first: a claim that takes the delivery from one writes its row in the same
	// commit, so read in this order it is found in one place or the other.
	if d, ok, err := s.fanoutDelivery(ctx, accountID, id); err != nil || ok {
		if err != nil {
			return d, nil, fmt.Errorf("get delivery %d: %w", id, err)
		}
		return asDeleted(d, deleting), []store.Attempt{}, nil
	}
	d, err := scanDelivery(s.rdb.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = ? AND account_id = ?`, id, accountID))
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %d: %w", id, notFound(err))
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT attempt, at, status_code, duration_ms, error, response_body
		FROM attempts WHERE delivery_id = ? ORDER BY attempt, at`, id)
	if err != nil {
		return d, nil, fmt.Errorf("get attempts of delivery %d: %w", id, err)
	}
	defer rows.Close()
	attempts := []store.Attempt{}
	for rows.Next() {
		var a store.Attempt
		var at int64
		var code sql.NullInt64
		var errText, body sql.NullString
		if err := rows.Scan(&a.Attempt, &at, &code, &a.DurationMs, &errText, &body); err != nil {
			return d, nil, fmt.Errorf("get attempts of delivery %d: %w", id, err)
		}
		a.At, a.StatusCode, a.Error, a.ResponseBody = fromMs(at), int(code.Int64), errText.String, body.String
		attempts = append(attempts, a)
	}
	if err := rows.Err(); err != nil {
		return d, nil, fmt.Errorf("get attempts of delivery %d: %w", id, err)
	}
	return asDeleted(d, deleting), attempts, nil
}

// A webhook's deliveries are found through deliveries_webhook_bucket, an index on
// (id >> 10, webhook_id, account_id): buckets of 1,024 consecutive delivery ids, ordered by
// webhook inside each (migration 00005 says why). bucketsDown is a recursive CTE b(n) of the
// bucket numbers from one down to another; crossed with deliveries d on bucketOf (CROSS JOIN
// keeps b the outer loop), it makes SQLite search the index once per bucket. Listing a webhook
// with few deliveries therefore costs time in proportion to all the deliveries stored, about
// 0.6 ms per 100,000 (BenchmarkListDeliveries). bucketOf must be written as the index's
// expression is, or SQLite does not use the index; bucketShift is its shift, as in the
// migration.
const (
	bucketShift = ` >> 10`
	bucketOf    = `(d.id` + bucketShift + `)`
	// ofWebhook follows FROM b: the webhook's deliveries d in each bucket (its argument is the
	// webhook's id).
	ofWebhook = ` CROSS JOIN deliveries d ON ` + bucketOf + ` = b.n AND d.webhook_id = ?`
)

func bucketsDown(from, to string) string {
	return `WITH RECURSIVE b(n) AS (SELECT ` + from + ` UNION ALL SELECT n - 1 FROM b WHERE n > ` + to + `) `
}

// bucketRange reads the lowest and the highest bucket. Each bound has a query of its own:
// SQLite reads min(id) or max(id) from one end of the table only when it is a query's only
// column; with both in one query it reads every row.
const bucketRange = `SELECT (SELECT min(id) FROM deliveries)` + bucketShift + `, (SELECT max(id) FROM deliveries)` + bucketShift

// maxWindow bounds the buckets one statement of ListDeliveries visits: the first visits 4, the
// next twice as many, so a page of a busy webhook costs a few buckets and a rare webhook's
// listing a few statements.
const maxWindow = 1024

func (s *Store) ListDeliveries(ctx context.Context, accountID, webhookID int64, f store.DeliveryFilter, p store.Page) ([]store.Delivery, int, error) {
	deleting := s.deletions() // before the reads: see deletions
	c, cancelling := deleting[webhookID]
	// Fan-outs hold pending deliveries only: a listing of another status finds nothing in
	// them, and need not wait for their rows; but for a webhook disabled whose cancelling is
	// under way, the pending ones it covers are listed as cancelled.
	if f.Status == "" || f.Status == store.StatusPending || cancelling && f.Status == store.StatusCancelled {
		if err := s.settle(ctx, accountID, webhookID); err != nil {
			return nil, 0, fmt.Errorf("list deliveries: %w", err)
		}
	}
	var lo, hi sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, bucketRange).Scan(&lo, &hi); err != nil {
		return nil, 0, fmt.Errorf("list deliveries: %w", err)
	}
	list := []store.Delivery{}
	if !hi.Valid {
		return list, 0, nil
	}
	where := ofWebhook + ` AND d.account_id = ?`
	args := []any{webhookID, accountID}
	switch {
	case cancelling && f.Status == store.StatusPending:
		where += ` AND d.status = 'pending' AND d.id > ?`
		args = append(args, c.upTo)
	case cancelling && f.Status == store.StatusCancelled:
		where += ` AND (d.status = 'cancelled' OR d.status = 'pending' AND d.id <= ?)`
		args = append(args, c.upTo)
	case f.Status != "":
		where += ` AND d.status = ?`
		args = append(args, f.Status)
	}
	var total int
	if err := s.rdb.QueryRowContext(ctx, bucketsDown("?", "?")+`SELECT count(*) FROM b`+where,
		append([]any{hi.Int64, lo.Int64}, args...)...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count deliveries: %w", err)
	}
	skip := p.Offset()
	if skip >= total {
		return list, total, nil
	}
	// Newest first: windows of buckets from the top, each sorted by id, until the page is full.
	for top, window := hi.Int64, int64(4); top >= lo.Int64 && len(list) < p.Size; top, window = top-window, min(2*window, maxWindow) {
		bottom := max(lo.Int64, top-window+1)
		rows, err := s.rdb.QueryContext(ctx, bucketsDown("?", "?")+`SELECT `+deliveryColumns+` FROM b`+where+` ORDER BY d.id DESC LIMIT ?`,
			append(append([]any{top, bottom}, args...), skip+p.Size-len(list))...)
		if err != nil {
			return nil, 0, fmt.Errorf("list deliveries: %w", err)
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("list deliveries: %w", err)
			}
			if skip > 0 {
				skip--
				continue
			}
			list = append(list, asDeleted(d, deleting))
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, 0, fmt.Errorf("list deliveries: %w", err)
		}
	}
	return list, total, nil
}

func (s *Store) RetryDelivery(ctx context.Context, accountID, id int64, now time.Time) (store.Delivery, error) {
	var d store.Delivery
	err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
		if _, err := materialize(ctx, tx, fanoutOfDelivery, id); err != nil {
			return fmt.Errorf("retry delivery %d: %w", id, err)
		}
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE deliveries SET status = 'pending',
			next_attempt_at = CASE WHEN lease_owner IS NULL THEN ? ELSE next_attempt_at END,
			completed_at = NULL WHERE id = ? AND account_id = ? RETURNING `+deliveryColumns,
			ms(now), id, accountID))
		if err != nil {
			return fmt.Errorf("retry delivery %d: %w", id, notFound(err))
		}
		return nil
	})
	return d, err
}

func (s *Store) QueueStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	var q store.QueueStats
	with, fanouts, rows := "", "fanouts", ""
	args := []any{ms(now)}
	if deleting := s.deletions(); deleting != nil {
		// The deliveries of deleted webhooks still being cancelled read as cancelled: they are
		// not counted either (every pending delivery of a deleted webhook is among them).
		with = `WITH gone(id) AS (SELECT value FROM json_each(?2)),
			kept(created_at, deliveries) AS (SELECT f.created_at, f.deliveries - (SELECT count(*) FROM json_each(f.webhooks) j
				WHERE j.value IN gone) FROM fanouts f) `
		fanouts, rows = "kept", " AND webhook_id NOT IN gone"
		args = append(args, joinHooks(slices.Collect(maps.Keys(deleting))))
	}
	// A fan-out's deliveries are due from their event's publish on.
	err := s.rdb.QueryRowContext(ctx, with+`SELECT
		count(*) FILTER (WHERE next_attempt_at <= ?1 OR lease_owner IS NOT NULL)
			+ (SELECT coalesce(sum(deliveries), 0) FROM `+fanouts+` WHERE created_at <= ?1),
		count(*) FILTER (WHERE next_attempt_at > ?1 AND lease_owner IS NULL)
			+ (SELECT coalesce(sum(deliveries), 0) FROM `+fanouts+` WHERE created_at > ?1)
		FROM deliveries WHERE status = 'pending'`+rows, args...).Scan(&q.Due, &q.Scheduled)
	if err != nil {
		return q, fmt.Errorf("queue stats: %w", err)
	}
	return q, nil
}

func (s *Store) Prune(ctx context.Context, p store.PruneParams) (int, error) {
	var n int
	err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
		// Rows are created in id order, so every delivery completed before p.Before has an id
		// below the first one created at or after it: the scan stops there.
		bound, err := firstRowFrom(ctx, tx, "deliveries", ms(p.Before))
		if err != nil {
			return fmt.Errorf("prune deliveries: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
			WHERE id < ? AND completed_at IS NOT NULL AND completed_at < ? ORDER BY id LIMIT ?) RETURNING id, event_id`,
			bound, ms(p.Before), p.Limit)
		if err != nil {
			return fmt.Errorf("prune deliveries: %w", err)
		}
		var ids []any
		gone := map[string]int{} // deliveries deleted per event
		for rows.Next() {
			var id int64
			var event string
			if err := rows.Scan(&id, &event); err != nil {
				rows.Close()
				return fmt.Errorf("prune deliveries: %w", err)
			}
			ids = append(ids, id)
			gone[event]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("prune deliveries: %w", err)
		}
		n = len(ids)
		for len(ids) > 0 {
			c := min(len(ids), 500)
			if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE delivery_id IN (`+placeholders(c)+`)`, ids[:c]...); err != nil {
				return fmt.Errorf("prune attempts: %w", err)
			}
			ids = ids[c:]
		}
		for event, count := range gone {
			if _, err := tx.ExecContext(ctx, `UPDATE events SET live = live - ? WHERE id = ?`, count, event); err != nil {
				return fmt.Errorf("prune events: %w", err)
			}
		}
		// An event goes when no delivery of it is left. Events, like deliveries, are found by
		// rowid, in the order they were created: an index on created_at would cost every
		// publish an index insert (5% of the writer's time).
		if bound, err = firstRowFrom(ctx, tx, "events", ms(p.Before)); err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE rowid IN (SELECT rowid FROM events
			WHERE rowid < ? AND live <= 0 ORDER BY rowid LIMIT ?)`, bound, p.Limit); err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id IN (SELECT id FROM alerts
			WHERE created_at < ? AND state != 'pending' ORDER BY created_at LIMIT ?)`, ms(p.Before), p.Limit); err != nil {
			return fmt.Errorf("prune alerts: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE events SET idempotency_key = NULL
			WHERE idempotency_key IS NOT NULL AND created_at < ?`, ms(p.IdempotencyBefore)); err != nil {
			return fmt.Errorf("forget idempotency keys: %w", err)
		}
		return nil
	})
	return n, err
}

// firstRowFrom finds, by binary search on the rowids of table (deliveries or events), the
// smallest rowid x such that the first row at or after x was created at or after t (one past
// the last rowid when none was): the writer inserts rows in rowid order, so those before x
// were created before t.
func firstRowFrom(ctx context.Context, tx *sql.Tx, table string, t int64) (int64, error) {
	var lo, hi sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM `+table).Scan(&lo, &hi); err != nil {
		return 0, err
	}
	if !lo.Valid {
		return 0, nil
	}
	l, h := lo.Int64, hi.Int64+1
	for l < h {
		mid := l + (h-l)/2 // < h <= max id + 1, so a row at or after mid exists
		var created int64
		if err := tx.QueryRowContext(ctx, `SELECT created_at FROM `+table+` WHERE rowid >= ? ORDER BY rowid LIMIT 1`, mid).Scan(&created); err != nil {
			return 0, err
		}
		if created >= t {
			h = mid
		} else {
			l = mid + 1
		}
	}
	return l, nil
}
