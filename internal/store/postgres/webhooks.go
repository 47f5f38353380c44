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

// DeleteWebhook deletes the webhook, then cancels its pending deliveries in a second statement:
// the delete waits for publishes that hold the webhook's row (they lock it FOR KEY SHARE), and
// only a statement started after them sees the deliveries they committed.
func (s *Store) deleteWebhook(ctx context.Context, accountID, id int64, now time.Time) error {
	return retry(ctx, func() error {
		return s.inTx(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1 AND account_id = $2`, id, accountID)
			if err != nil {
				return fmt.Errorf("delete webhook %d: %w", id, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("delete webhook %d: %w", id, store.ErrNotFound)
			}
			_, err = tx.Exec(ctx, `UPDATE deliveries SET status = 'cancelled', completed_at = $1, next_attempt_at = NULL,
				lease_owner = NULL, last_error = 'webhook deleted' WHERE webhook_id = $2 AND status = 'pending'`, ts(now), id)
			if err != nil {
				return fmt.Errorf("cancel deliveries of webhook %d: %w", id, err)
			}
			return nil
		})
	})
}
