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
// webhook takes FOR UPDATE before it cancels the pending deliveries; see lockForDisableSQL.
func (s *Store) updateWebhook(ctx context.Context, accountID, id int64, update func(*store.Webhook) error) (store.Webhook, error) {
	var w store.Webhook
	err := s.inTx(ctx, func(tx pgx.Tx) error {
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
		disabling := before != store.WebhookDisabled && w.Status == store.WebhookDisabled
		b := &pgx.Batch{}
		if disabling {
			b.Queue(lockForDisableSQL, []int64{id})
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
			b.Queue(cancelPendingSQL, []int64{id}, []string{"webhook disabled"}, []time.Time{w.UpdatedAt})
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		if disabling {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("lock webhook %d: %w", id, err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("update webhook %d: %w", id, err)
		}
		if disabling {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("cancel deliveries of webhook %d: %w", id, err)
			}
		}
		return br.Close()
	})
	return w, err
}

// lockForDisableSQL takes FOR UPDATE on webhooks about to be disabled, in id order, before their
// status changes and their pending deliveries are cancelled (later statements of the same
// transaction). FOR UPDATE conflicts with the FOR KEY SHARE that publishes take, so it first
// waits for the publishes under way, and the cancel, whose snapshot is taken after the wait, sees
// the pending deliveries they stored. A publish that comes later must read the webhook as
// disabled and store its deliveries as cancelled; that takes the status change being a key
// update (see the webhooks_id_status index), since a FOR KEY SHARE may otherwise lock the old
// version of a row through a non-key update. Publishes lock their webhooks in id order too, so
// the two never wait for each other in a cycle.
const lockForDisableSQL = `SELECT id FROM webhooks WHERE id = ANY($1) ORDER BY id FOR UPDATE`

// cancelPendingSQL cancels the pending deliveries of the webhooks $1, each with its reason in $2
// at its time in $3. The rows are locked in id order, the order Complete updates them in, so the
// two do not deadlock.
const cancelPendingSQL = `WITH c AS MATERIALIZED (
	SELECT d.id, w.reason, w.at FROM deliveries d
	JOIN unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS w(webhook_id, reason, at) ON d.webhook_id = w.webhook_id
	WHERE d.status = 'pending'
	ORDER BY d.id
	FOR UPDATE OF d
)
UPDATE deliveries d SET status = 'cancelled', completed_at = c.at, next_attempt_at = NULL, lease_owner = NULL,
	last_error = c.reason
FROM c WHERE d.id = c.id`

// deleteWebhook deletes the webhook and records the deletion (webhook_deletions) in one
// transaction, and calls committed; then it cancels the webhook's pending deliveries,
// cancelChunk at a time in id order, for up to deleteWait, and leaves what is left to a
// goroutine of its own. Until that is done, reads show those deliveries as cancelled at the
// deletion's time, whichever node reads them. No delivery of the webhook is stored after the delete: a publish locks the
// webhooks it fans out to (FOR KEY SHARE), so the delete waits for it, and later ones skip it.
// A cancelling cut short (the node stopped) leaves the record: its deliveries go on reading as
// cancelled, the engine cancels them as it claims them, and Prune drops the record once none
// is pending.
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
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_deletions (webhook_id, deleted_at) VALUES ($1, $2)`, id, ts(now)); err != nil {
				return fmt.Errorf("delete webhook %d: %w", id, err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	committed()
	c := &cancelRun{webhook: id, at: ts(now)}
	if err := c.steps(ctx, s, time.Now().Add(s.deleteWait)); err != nil || c.done {
		if err != nil {
			s.cancelFailed(id, err)
		}
		return nil
	}
	s.cancels.Lock()
	defer s.cancels.Unlock()
	if s.closing() {
		s.leftToClaims(id)
		return nil
	}
	s.cancels.wg.Add(1)
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer s.cancels.wg.Done()
		for !c.done {
			if s.closing() {
				s.leftToClaims(id)
				return
			}
			if err := c.steps(ctx, s, time.Now().Add(cancelSpell)); err != nil {
				s.cancelFailed(id, err)
				return
			}
		}
	}()
	return nil
}

// deleteWait is how long DeleteWebhook cancels the webhook's pending deliveries before it
// returns (Store.deleteWait, which tests change): one statement cancelling 200,000 of them
// took 2.3 s.
const deleteWait = time.Second

// cancelChunk is how many of a deleted webhook's deliveries one statement of its cancelling
// goes through; its goroutine looks whether Close began every cancelSpell.
const (
	cancelChunk = 4096
	cancelSpell = 10 * time.Millisecond
)

// cancelChunkSQL cancels the pending ones among the next $3 deliveries of webhook $1 after id
// $2 and returns the last id it went through (NULL when there were none left: the record of
// the deletion is dropped then, in the same statement).
const cancelChunkSQL = `WITH c AS (
	SELECT id FROM deliveries WHERE webhook_id = $1 AND id > $2 ORDER BY id LIMIT $3
), cancelled AS (
	UPDATE deliveries d SET status = 'cancelled', completed_at = $4, next_attempt_at = NULL, lease_owner = NULL,
		last_error = 'webhook deleted'
	FROM c WHERE d.id = c.id AND d.status = 'pending'
), done AS (
	DELETE FROM webhook_deletions WHERE webhook_id = $1 AND NOT EXISTS (SELECT 1 FROM c)
)
SELECT max(id) FROM c`

// cancelRun is a deleted webhook's cancelling under way: its deliveries up to after are done.
type cancelRun struct {
	webhook int64
	at      time.Time
	after   int64
	done    bool
}

// steps runs chunks until the run is done or deadline has passed. It goes on when ctx ends:
// the webhook is already deleted.
func (c *cancelRun) steps(ctx context.Context, s *Store, deadline time.Time) error {
	ctx = context.WithoutCancel(ctx)
	for !c.done && time.Now().Before(deadline) {
		var last *int64
		err := retry(ctx, func() error {
			return s.pool.QueryRow(ctx, cancelChunkSQL, c.webhook, c.after, cancelChunk, c.at).Scan(&last)
		})
		if err != nil {
			return fmt.Errorf("cancel deliveries of webhook %d: %w", c.webhook, err)
		}
		if last == nil {
			c.done = true
		} else {
			c.after = *last
		}
	}
	return nil
}

// cancelFailed logs that the cancelling of webhook's deliveries stopped on err.
func (s *Store) cancelFailed(webhook int64, err error) {
	s.log.Error("cancel the pending deliveries of a deleted webhook; they read as cancelled, and the engine cancels them as it claims them",
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
	s.log.Info("store closing: the rest of a deleted webhook's pending deliveries read as cancelled, and the engine cancels them as it claims them",
		"webhook", webhook)
}
