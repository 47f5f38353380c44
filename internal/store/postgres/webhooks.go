package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookrelay/hookrelay/internal/store"
)

const webhookColumns = `id, account_id, event, url, secret, alert_email, send_alert_email, skip_errors,
	skip_error_codes, retry_on_error, max_throughput_per_minute, status, version, created_at, updated_at,
	last_delivery_at, last_success_at, consecutive_failures, failing_since, failing_deliveries, disabled_reason`

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	return scanWebhookWith(row)
}

// scanWebhookWith scans webhookColumns followed by the columns scanned into extra.
func scanWebhookWith(row pgx.Row, extra ...any) (store.Webhook, error) {
	var w store.Webhook
	var alert, reason *string
	var lastDelivery, lastSuccess, failingSince pgtype.Timestamptz
	dest := []any{&w.ID, &w.AccountID, &w.Event, &w.URL, &w.Secret, &alert, &w.SendAlertEmail, &w.SkipErrors,
		&w.SkipErrorCodes, &w.RetryOnError, &w.MaxThroughputPerMinute, &w.Status, &w.Version, &w.CreatedAt, &w.UpdatedAt,
		&lastDelivery, &lastSuccess, &w.ConsecutiveFailures, &failingSince, &w.FailingDeliveries, &reason}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return w, err
	}
	if alert != nil {
		w.AlertEmail = *alert
	}
	if reason != nil {
		w.DisabledReason = *reason
	}
	if w.SkipErrorCodes == nil {
		w.SkipErrorCodes = []string{}
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	w.LastDeliveryAt, w.LastSuccessAt, w.FailingSince = fromTS(lastDelivery), fromTS(lastSuccess), fromTS(failingSince)
	return w, nil
}

func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	w.Version = 1
	if w.Status == "" {
		w.Status = store.WebhookActive
	}
	if w.SkipErrorCodes == nil {
		w.SkipErrorCodes = []string{}
	}
	w.CreatedAt = ts(w.CreatedAt)
	w.UpdatedAt = w.CreatedAt
	// Selecting from accounts both checks that the account exists and inserts in one statement.
	err := s.pool.QueryRow(ctx, `INSERT INTO webhooks (account_id, event, url, secret, alert_email, send_alert_email,
		skip_errors, skip_error_codes, retry_on_error, max_throughput_per_minute, status, version, created_at, updated_at)
		SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13 FROM accounts WHERE id = $1 RETURNING id`,
		w.AccountID, w.Event, w.URL, w.Secret, nullString(w.AlertEmail), w.SendAlertEmail, w.SkipErrors,
		w.SkipErrorCodes, w.RetryOnError, w.MaxThroughputPerMinute, w.Status, w.Version, w.CreatedAt).Scan(&w.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, fmt.Errorf("get account %d: %w", w.AccountID, store.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("insert webhook: %w", err)
	}
	return w, nil
}

func (s *Store) GetWebhook(ctx context.Context, accountID, id int64) (store.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND account_id = $2`, id, accountID))
	if err != nil {
		return w, fmt.Errorf("get webhook %d: %w", id, notFound(err))
	}
	return w, nil
}

func (s *Store) WebhookByID(ctx context.Context, id int64) (store.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if err != nil {
		return w, fmt.Errorf("get webhook %d: %w", id, notFound(err))
	}
	return w, nil
}

func (s *Store) WebhooksByID(ctx context.Context, ids []int64) (map[int64]store.Webhook, error) {
	hooks := make(map[int64]store.Webhook, len(ids))
	if len(ids) == 0 {
		return hooks, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("get webhooks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("get webhooks: %w", err)
		}
		hooks[w.ID] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get webhooks: %w", err)
	}
	return hooks, nil
}

func (s *Store) ListWebhooks(ctx context.Context, accountID int64, f store.WebhookFilter, p store.Page) ([]store.Webhook, int, error) {
	where := `account_id = $1`
	args := []any{accountID}
	if f.Event != "" {
		where += ` AND event = $2`
		args = append(args, f.Event)
	}
	return listPage(ctx, s.pool, "webhooks", webhookColumns, where, args, p, scanWebhook)
}

// updateWebhook locks the webhook FOR NO KEY UPDATE, the FOR UPDATE that leaves the key alone:
// it serialises updates of the webhook (UpdateHealth's too) but, unlike FOR UPDATE, does not hold
// up publishes, whose FOR KEY SHARE only guards against a delete. An update that disables the
// webhook takes FOR UPDATE (see lockForDisableSQL) and records a cancellation of its pending
// deliveries (recordCancelSQL), which the caller then carries out (cancelBehind); disabling
// reports that it did. An update that enables it again first finishes that cancelling, if it is
// still under way (finishCancelSQL), so that nothing it covers is sent.
func (s *Store) updateWebhook(ctx context.Context, accountID, id int64, update func(*store.Webhook) error) (w store.Webhook, disabling bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		w, err = scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND account_id = $2 FOR NO KEY UPDATE`, id, accountID))
		if err != nil {
			return fmt.Errorf("get webhook %d: %w", id, notFound(err))
		}
		before := w.Status
		if err := update(&w); err != nil {
			return err
		}
		w.ID, w.AccountID = id, accountID
		w.Version++
		if w.SkipErrorCodes == nil {
			w.SkipErrorCodes = []string{}
		}
		w.UpdatedAt = ts(w.UpdatedAt)
		disabling = before != store.WebhookDisabled && w.Status == store.WebhookDisabled
		enabling := before == store.WebhookDisabled && w.Status != store.WebhookDisabled
		b := &pgx.Batch{}
		if disabling {
			b.Queue(lockForDisableSQL, []int64{id})
		}
		if enabling {
			// Before the status changes: the change locks the row against publishes, the
			// cancelling does not.
			b.Queue(finishCancelSQL, id)
		}
		b.Queue(`UPDATE webhooks SET event = $1, url = $2, secret = $3, alert_email = $4, send_alert_email = $5,
			skip_errors = $6, skip_error_codes = $7, retry_on_error = $8, max_throughput_per_minute = $9, status = $10,
			version = $11, updated_at = $12, last_delivery_at = $13, last_success_at = $14, consecutive_failures = $15,
			failing_since = $16, failing_deliveries = $17, disabled_reason = $18 WHERE id = $19`,
			w.Event, w.URL, w.Secret, nullString(w.AlertEmail), w.SendAlertEmail, w.SkipErrors, w.SkipErrorCodes,
			w.RetryOnError, w.MaxThroughputPerMinute, w.Status, w.Version, w.UpdatedAt, nullTS(w.LastDeliveryAt),
			nullTS(w.LastSuccessAt), w.ConsecutiveFailures, nullTS(w.FailingSince), w.FailingDeliveries,
			nullString(w.DisabledReason), id)
		if disabling {
			b.Queue(recordCancelSQL, []int64{id}, []string{"webhook disabled"}, []time.Time{w.UpdatedAt})
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		if disabling {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("lock webhook %d: %w", id, err)
			}
		}
		if enabling {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("cancel deliveries of webhook %d: %w", id, err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("update webhook %d: %w", id, err)
		}
		if disabling {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("record the cancelling of webhook %d's deliveries: %w", id, err)
			}
		}
		return br.Close()
	})
	return w, disabling && err == nil, err
}

// lockForDisableSQL takes FOR UPDATE on webhooks about to be disabled, in id order, before their
// status changes and their pending deliveries are recorded for cancelling (later statements of
// the same transaction). FOR UPDATE conflicts with the FOR KEY SHARE that publishes take, so it
// first waits for the publishes under way, and the record, whose snapshot is taken after the
// wait, covers the deliveries they stored. A publish that comes later must read the webhook as
// disabled and store its deliveries as cancelled; that takes the status change being a key
// update (see the webhooks_id_status index), since a FOR KEY SHARE may otherwise lock the old
// version of a row through a non-key update. Publishes lock their webhooks in id order too, so
// the two never wait for each other in a cycle.
const lockForDisableSQL = `SELECT id FROM webhooks WHERE id = ANY($1) ORDER BY id FOR UPDATE`

// recordCancelSQL records the cancelling of the deliveries of the webhooks $1 that are disabled
// now, each with its reason in $2 at its time in $3: those with ids up to the webhook's last one
// (publishes store later ones cancelled while it stays disabled). A webhook with no deliveries
// gets no record. The record is written in the disabling transaction, so reads show the
// deliveries as cancelled from its commit on; cancelBehind then cancels them a chunk per
// statement, without holding the webhook's row against publishes as one long statement would:
// cancelling a million in the disabling transaction took 21 s, and held a publish to the
// webhook's event for as long.
const recordCancelSQL = `INSERT INTO cancellations (webhook_id, at, reason, up_to)
SELECT w.id, w.at, w.reason, m.up_to
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS w(id, reason, at)
CROSS JOIN LATERAL (SELECT max(d.id) AS up_to FROM deliveries d WHERE d.webhook_id = w.id) m
WHERE m.up_to IS NOT NULL
ON CONFLICT (webhook_id) DO UPDATE SET at = excluded.at, reason = excluded.reason, up_to = excluded.up_to, reached = 0`

// finishCancelSQL ends a disabled webhook's cancellation still under way, in the transaction
// that enables it again: it cancels the pending deliveries the record covers that cancelling has
// not reached, and drops the record. Its rows are locked in id order, the order Complete updates
// them in, so the two do not deadlock. It waits for a chunk of cancelBehind's under way (the
// record's row lock), and then starts where that chunk ended.
const finishCancelSQL = `WITH c AS (
	DELETE FROM cancellations WHERE webhook_id = $1 RETURNING at, reason, up_to, reached
), pending AS MATERIALIZED (
	SELECT d.id FROM deliveries d, c
	WHERE d.webhook_id = $1 AND d.id > c.reached AND d.id <= c.up_to AND d.status = 'pending'
	ORDER BY d.id
	FOR UPDATE OF d
)
UPDATE deliveries d SET status = 'cancelled', completed_at = c.at, next_attempt_at = NULL, lease_owner = NULL,
	last_error = c.reason
FROM pending, c WHERE d.id = pending.id`

// deleteWebhook deletes the webhook and records the cancelling of its deliveries (cancellations)
// in one transaction, and calls committed; then it cancels them (cancelBehind). No delivery of
// the webhook is stored after the delete: a publish locks the webhooks it fans out to (FOR KEY
// SHARE), so the delete waits for it, and later ones skip it.
func (s *Store) deleteWebhook(ctx context.Context, accountID, id int64, now time.Time, committed func()) error {
	err := retry(ctx, func() error {
		return s.inTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND account_id = $2`, id, accountID)
			if err != nil {
				return fmt.Errorf("delete webhook %d: %w", id, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("delete webhook %d: %w", id, store.ErrNotFound)
			}
			// A disabled webhook's cancelling under way becomes the delete's.
			if _, err := tx.Exec(ctx, `INSERT INTO cancellations (webhook_id, at, reason) VALUES ($1, $2, 'webhook deleted')
				ON CONFLICT (webhook_id) DO UPDATE SET at = excluded.at, reason = excluded.reason, up_to = NULL`, id, ts(now)); err != nil {
				return fmt.Errorf("delete webhook %d: %w", id, err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	committed()
	s.cancelBehind(ctx, id, s.cancelWait)
	return nil
}

// cancelBehind carries out webhook's recorded cancellation (see recordCancelSQL and
// deleteWebhook): it cancels the deliveries the record covers, cancelChunk at a time in id order,
// for up to wait, and leaves what is left to a goroutine of its own. Until that is done, reads
// show those deliveries as cancelled at the change's time (delivery_reads), whichever node reads
// them. A cancelling cut short (the node stopped) leaves the record: its deliveries go on reading
// as cancelled, the engine cancels them as it claims them (the webhook is gone or disabled),
// enabling the webhook again finishes it, and Prune drops the record once none is pending.
func (s *Store) cancelBehind(ctx context.Context, webhook int64, wait time.Duration) {
	c := &cancelRun{webhook: webhook}
	if err := c.steps(ctx, s, time.Now().Add(wait)); err != nil || c.done {
		if err != nil {
			s.cancelFailed(webhook, err)
		}
		return
	}
	s.cancels.Lock()
	defer s.cancels.Unlock()
	if s.closing() {
		s.leftToClaims(webhook)
		return
	}
	s.cancels.wg.Add(1)
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer s.cancels.wg.Done()
		for !c.done {
			if s.closing() {
				s.leftToClaims(webhook)
				return
			}
			if err := c.steps(ctx, s, time.Now().Add(cancelSpell)); err != nil {
				s.cancelFailed(webhook, err)
				return
			}
		}
	}()
}

// cancelWait is how long DeleteWebhook, and UpdateWebhook when it disables, cancel the webhook's
// pending deliveries before they return (Store.cancelWait, which tests change): one statement
// cancelling 200,000 of them took 2.3 s.
const cancelWait = time.Second

// cancelChunk is how many of a webhook's deliveries one statement of its cancelling goes
// through; its goroutine looks whether Close began every cancelSpell.
const (
	cancelChunk = 4096
	cancelSpell = 10 * time.Millisecond
)

// cancelChunkSQL cancels the pending ones among the next $2 deliveries that webhook $1's
// cancellation covers and moves the record past them, or drops the record when there are none
// left; it reports whether there were. It locks the record, so chunks of the same cancelling on
// two nodes take turns, and the second starts where the first ended.
const cancelChunkSQL = `WITH r AS (
	SELECT at, reason, up_to, reached FROM cancellations WHERE webhook_id = $1 FOR UPDATE
), c AS (
	-- Bounds from subqueries, not a join, so that they bound the index scan.
	SELECT id FROM deliveries
	WHERE webhook_id = $1 AND id > (SELECT reached FROM r) AND id <= (SELECT coalesce(up_to, 9223372036854775807) FROM r)
	ORDER BY id LIMIT $2
), cancelled AS (
	UPDATE deliveries d SET status = 'cancelled', completed_at = r.at, next_attempt_at = NULL, lease_owner = NULL,
		last_error = r.reason
	FROM c, r WHERE d.id = c.id AND d.status = 'pending'
), moved AS (
	UPDATE cancellations SET reached = (SELECT max(id) FROM c) WHERE webhook_id = $1 AND EXISTS (SELECT 1 FROM c)
), done AS (
	DELETE FROM cancellations WHERE webhook_id = $1 AND NOT EXISTS (SELECT 1 FROM c)
)
SELECT EXISTS (SELECT 1 FROM c)`

// cancelRun is a webhook's cancelling under way.
type cancelRun struct {
	webhook int64
	done    bool
}

// steps runs chunks until the run is done or deadline has passed. It goes on when ctx ends:
// the webhook is already deleted or disabled.
func (c *cancelRun) steps(ctx context.Context, s *Store, deadline time.Time) error {
	ctx = context.WithoutCancel(ctx)
	for !c.done && time.Now().Before(deadline) {
		var more bool
		err := retry(ctx, func() error {
			return s.pool.QueryRow(ctx, cancelChunkSQL, c.webhook, cancelChunk).Scan(&more)
		})
		if err != nil {
			return fmt.Errorf("cancel deliveries of webhook %d: %w", c.webhook, err)
		}
		c.done = !more
	}
	return nil
}

// cancelFailed logs that the cancelling of webhook's deliveries stopped on err.
func (s *Store) cancelFailed(webhook int64, err error) {
	s.log.Error("cancel the pending deliveries of a deleted or disabled webhook; they read as cancelled, and the engine cancels them as it claims them",
		"webhook", webhook, "err", err)
}

// closing reports whether Close has begun.
func (s *Store) closing() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// leftToClaims logs that Close stopped the cancelling of webhook's deliveries.
func (s *Store) leftToClaims(webhook int64) {
	s.log.Info("store closing: the rest of a deleted or disabled webhook's pending deliveries read as cancelled, and the engine cancels them as it claims them",
		"webhook", webhook)
}
