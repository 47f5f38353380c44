package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookrelay/hookrelay/internal/store"
)

// claimSQL leases the oldest due deliveries. SKIP LOCKED lets nodes claim at once without
// waiting for each other: each takes rows no other claim holds, and a row another node claimed
// and committed meanwhile is re-checked against the WHERE clause and left out, since its
// next_attempt_at moved to the end of that lease. MATERIALIZED keeps the locking subquery from
// being folded into the UPDATE, so it runs exactly once. The webhook's version is read in the
// same statement (0 when the webhook is gone).
const claimSQL = `WITH due AS MATERIALIZED (
	SELECT id, next_attempt_at FROM deliveries
	WHERE status = 'pending' AND next_attempt_at <= $1
	ORDER BY next_attempt_at
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), claimed AS (
	UPDATE deliveries d SET next_attempt_at = $3, lease_owner = $4
	FROM due WHERE d.id = due.id
	RETURNING d.id, d.account_id, d.webhook_id, d.event_id, d.event, d.attempts, d.created_at, due.next_attempt_at AS due_at
)
SELECT c.id, c.account_id, c.webhook_id, coalesce(w.version, 0), c.event_id, c.event, c.attempts, c.created_at
FROM claimed c LEFT JOIN webhooks w ON w.id = c.webhook_id
ORDER BY c.due_at, c.id`

func (s *Store) Claim(ctx context.Context, p store.ClaimParams) ([]store.Job, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	// A bitmap scan of deliveries_due visits the heap for every index entry in the due range,
	// dead ones included: the versions that every claim and outcome leave behind until vacuum
	// runs. The planner picks it whenever it expects fewer due rows than the limit, and then a
	// claim slows down with every delivery made since the last vacuum. An index scan in
	// next_attempt_at order stops at the limit and marks the dead entries it meets, so later
	// scans skip them. set_config(…, true) lasts until the end of the batch's implicit
	// transaction, so it applies to the claim alone, at no extra round trip.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('enable_bitmapscan', 'off', true)`)
	b.Queue(claimSQL, ts(p.Now), p.Limit, ts(p.LeaseUntil), p.Owner)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	rows, _ := br.Query()
	var jobs []store.Job
	for rows.Next() {
		var j store.Job
		if err := rows.Scan(&j.DeliveryID, &j.AccountID, &j.WebhookID, &j.WebhookVersion, &j.EventID, &j.Event,
			&j.Attempts, &j.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		j.CreatedAt = j.CreatedAt.UTC()
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return jobs, nil
}

// completeSQL applies a batch of outcomes and logs their attempts in one statement. The update
// is fenced by the lease owner: a delivery cancelled, retried by hand or claimed by another node
// meanwhile is left alone, but its attempt is logged all the same (the attempts CTE runs to
// completion whatever the update matches).
//
// When an attempt was made its status code and error replace the last ones; otherwise the last
// ones stay unless the outcome brings its own error.
const completeSQL = `WITH o AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bool[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[])
		AS o(id, owner, status, attempted, code, error, next_attempt_at, at)
), a AS (
	INSERT INTO attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body)
	SELECT delivery_id, attempt, at, NULLIF(code, 0), duration_ms, NULLIF(error, ''), NULLIF(body, '')
	FROM unnest($9::bigint[], $10::int[], $11::timestamptz[], $12::int[], $13::bigint[], $14::text[], $15::text[])
		WITH ORDINALITY AS a(delivery_id, attempt, at, code, duration_ms, error, body, n)
	ORDER BY n
)
UPDATE deliveries d SET
	status = o.status,
	attempts = d.attempts + CASE WHEN o.attempted THEN 1 ELSE 0 END,
	last_status_code = CASE WHEN o.attempted THEN NULLIF(o.code, 0) ELSE d.last_status_code END,
	last_error = CASE WHEN o.attempted OR o.error <> '' THEN NULLIF(o.error, '') ELSE d.last_error END,
	next_attempt_at = CASE WHEN o.status = 'pending' THEN o.next_attempt_at END,
	completed_at = CASE WHEN o.status = 'pending' THEN NULL ELSE o.at END,
	lease_owner = NULL
FROM o WHERE d.id = o.id AND d.lease_owner = o.owner`

type leaseKey struct {
	delivery int64
	owner    string
}

func (s *Store) Complete(ctx context.Context, outcomes []store.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	n := len(outcomes)
	ids := make([]int64, 0, n)
	owners, statuses, errs := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	attempted := make([]bool, 0, n)
	codes := make([]int32, 0, n)
	nexts, ats := make([]time.Time, 0, n), make([]time.Time, 0, n)
	aDelivery, aDuration := make([]int64, 0, n), make([]int64, 0, n)
	aAttempt, aCode := make([]int32, 0, n), make([]int32, 0, n)
	aAt := make([]time.Time, 0, n)
	aError, aBody := make([]string, 0, n), make([]string, 0, n)
	seen := make(map[leaseKey]bool, n)
	order := make([]int, 0, n)
	for i, o := range outcomes {
		if a := o.Attempt; a != nil {
			aDelivery = append(aDelivery, o.DeliveryID)
			aAttempt = append(aAttempt, int32(a.Attempt))
			aAt = append(aAt, ts(a.At))
			aCode = append(aCode, int32(a.StatusCode))
			aDuration = append(aDuration, a.DurationMs)
			aError = append(aError, a.Error)
			aBody = append(aBody, a.ResponseBody)
		}
		// The first outcome of an owner for a delivery ends the lease, so a later one of the
		// same owner in the batch would be fenced off: leave it out, as applying them one by one
		// would. (Outcomes of different owners need no such care: at most one holds the lease.)
		k := leaseKey{o.DeliveryID, o.Owner}
		if seen[k] {
			continue
		}
		seen[k] = true
		order = append(order, i)
	}
	// In id order, which the update follows as it walks the array, so that two writers updating
	// overlapping deliveries (a delete cancelling them, say) lock them in the same order; a
	// deadlock that happens all the same is retried.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(outcomes[a].DeliveryID, outcomes[b].DeliveryID) })
	for _, i := range order {
		o := outcomes[i]
		ids = append(ids, o.DeliveryID)
		owners = append(owners, o.Owner)
		statuses = append(statuses, o.Status)
		if a := o.Attempt; a != nil {
			attempted = append(attempted, true)
			codes = append(codes, int32(a.StatusCode))
			errs = append(errs, a.Error)
		} else {
			attempted = append(attempted, false)
			codes = append(codes, 0)
			errs = append(errs, o.Error)
		}
		nexts = append(nexts, ts(o.NextAttemptAt))
		ats = append(ats, ts(o.At))
	}
	err := retry(ctx, func() error {
		_, err := s.pool.Exec(ctx, completeSQL, ids, owners, statuses, attempted, codes, errs, nexts, ats,
			aDelivery, aAttempt, aAt, aCode, aDuration, aError, aBody)
		return err
	})
	if err != nil {
		return fmt.Errorf("complete %d deliveries: %w", len(outcomes), err)
	}
	return nil
}

func (s *Store) release(ctx context.Context, owner string, now time.Time) error {
	err := retry(ctx, func() error {
		var err error
		if owner == "" {
			_, err = s.pool.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $1, lease_owner = NULL
				WHERE status = 'pending' AND next_attempt_at > $1 AND lease_owner IS NOT NULL`, ts(now))
		} else {
			_, err = s.pool.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $1, lease_owner = NULL
				WHERE status = 'pending' AND next_attempt_at > $1 AND lease_owner = $2`, ts(now), owner)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	return nil
}

const deliveryColumns = `id, account_id, webhook_id, event_id, event, status, attempts, last_status_code, last_error,
	next_attempt_at, created_at, completed_at`

// scanDelivery reads deliveryColumns.
func scanDelivery(row pgx.Row) (store.Delivery, error) {
	var d store.Delivery
	var code *int32
	var lastErr *string
	var next, completed pgtype.Timestamptz
	err := row.Scan(&d.ID, &d.AccountID, &d.WebhookID, &d.EventID, &d.Event, &d.Status, &d.Attempts, &code, &lastErr,
		&next, &d.CreatedAt, &completed)
	if err != nil {
		return d, err
	}
	if code != nil {
		d.LastStatusCode = int(*code)
	}
	if lastErr != nil {
		d.LastError = *lastErr
	}
	d.NextAttemptAt, d.CreatedAt, d.CompletedAt = fromTS(next), d.CreatedAt.UTC(), fromTS(completed)
	return d, nil
}

func scanAttempt(row pgx.Row) (store.Attempt, error) {
	var a store.Attempt
	var code *int32
	var errText, body *string
	if err := row.Scan(&a.Attempt, &a.At, &code, &a.DurationMs, &errText, &body); err != nil {
		return a, err
	}
	a.At = a.At.UTC()
	if code != nil {
		a.StatusCode = int(*code)
	}
	if errText != nil {
		a.Error = *errText
	}
	if body != nil {
		a.ResponseBody = *body
	}
	return a, nil
}

func (s *Store) GetDelivery(ctx context.Context, accountID, id int64) (store.Delivery, []store.Attempt, error) {
	b := &pgx.Batch{}
	// A pending delivery of a webhook deleted or disabled, whose cancelling has not reached it
	// yet, reads as the cancelling will leave it (delivery_reads; see cancelBehind).
	b.Queue(`SELECT `+deliveryColumns+` FROM delivery_reads WHERE id = $1 AND account_id = $2`, id, accountID)
	b.Queue(`SELECT attempt, at, status_code, duration_ms, error, response_body FROM attempts
		WHERE delivery_id = $1 ORDER BY id`, id)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	d, err := scanDelivery(br.QueryRow())
	if err != nil {
		return d, nil, fmt.Errorf("get delivery %d: %w", id, notFound(err))
	}
	rows, _ := br.Query()
	attempts, err := collect(rows, scanAttempt)
	if err != nil {
		return d, nil, fmt.Errorf("get attempts of delivery %d: %w", id, err)
	}
	return d, attempts, br.Close()
}

func (s *Store) ListDeliveries(ctx context.Context, accountID, webhookID int64, f store.DeliveryFilter, p store.Page) ([]store.Delivery, int, error) {
	where := `webhook_id = $1 AND account_id = $2`
	args := []any{webhookID, accountID}
	if f.Status != "" {
		where += ` AND status = $3`
		args = append(args, f.Status)
	}
	return listPage(ctx, s.pool, "delivery_reads", deliveryColumns, where, args, p, scanDelivery)
}

func (s *Store) retryDelivery(ctx context.Context, accountID, id int64, now time.Time) (store.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `UPDATE deliveries SET status = 'pending',
		next_attempt_at = CASE WHEN lease_owner IS NULL THEN $1 ELSE next_attempt_at END,
		completed_at = NULL WHERE id = $2 AND account_id = $3 RETURNING `+deliveryColumns,
		ts(now), id, accountID))
	if err != nil {
		return d, fmt.Errorf("retry delivery %d: %w", id, notFound(err))
	}
	return d, nil
}

func (s *Store) QueueStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	var q store.QueueStats
	err := s.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE next_attempt_at <= $1 OR lease_owner IS NOT NULL),
		count(*) FILTER (WHERE next_attempt_at > $1 AND lease_owner IS NULL)
		FROM deliveries d WHERE status = 'pending'
		-- Deliveries a cancellation covers read as cancelled until they are: not counted.
		AND NOT EXISTS (SELECT 1 FROM cancellations c WHERE c.webhook_id = d.webhook_id
			AND (c.up_to IS NULL OR d.id <= c.up_to))`, ts(now)).Scan(&q.Due, &q.Scheduled)
	if err != nil {
		return q, fmt.Errorf("queue stats: %w", err)
	}
	return q, nil
}

// Prune runs as one batch, one implicit transaction of five statements; each sees what the one
// before deleted, so an event whose last delivery goes now goes in the same call. SKIP LOCKED
// lets two nodes prune at once without waiting for each other. Finished alerts go by their
// creation time, at most Limit of them per call.
func (s *Store) Prune(ctx context.Context, p store.PruneParams) (int, error) {
	var limit any = p.Limit
	if p.Limit < 0 {
		limit = nil // no limit
	}
	var n int
	err := retry(ctx, func() error {
		b := &pgx.Batch{}
		b.Queue(`WITH gone AS (
				DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
					WHERE completed_at IS NOT NULL AND completed_at < $1 ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED)
				RETURNING id
			), attempts_gone AS (
				DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM gone)
			)
			SELECT count(*) FROM gone`, ts(p.Before), limit)
		b.Queue(`DELETE FROM events WHERE id IN (SELECT e.id FROM events e
				WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
				ORDER BY e.created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, ts(p.Before), limit)
		b.Queue(`DELETE FROM alerts WHERE id IN (SELECT id FROM alerts
				WHERE created_at < $1 AND state <> 'pending' ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, ts(p.Before), limit)
		b.Queue(`UPDATE events SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND created_at < $1`,
			ts(p.IdempotencyBefore))
		// Cancellations cut short, once the engine has cancelled the rest.
		b.Queue(`DELETE FROM cancellations c WHERE NOT EXISTS (SELECT 1 FROM deliveries d
				WHERE d.webhook_id = c.webhook_id AND d.status = 'pending' AND (c.up_to IS NULL OR d.id <= c.up_to))`)
		br := s.pool.SendBatch(ctx, b)
		defer br.Close()
		if err := br.QueryRow().Scan(&n); err != nil {
			return fmt.Errorf("prune deliveries: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("prune alerts: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("forget idempotency keys: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("prune cancellations: %w", err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
