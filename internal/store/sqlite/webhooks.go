package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

const webhookColumns = `id, account_id, event, url, secret, alert_email, send_alert_email, skip_errors,
	skip_error_codes, retry_on_error, max_throughput_per_minute, status, version, created_at, updated_at,
	last_delivery_at, last_success_at, consecutive_failures, failing_since, failing_deliveries, disabled_reason`

func scanWebhook(row interface{ Scan(...any) error }) (store.Webhook, error) {
	w, _, err := scanWebhookState(row, false)
	return w, err
}

// scanWebhookState scans webhookColumns, followed by alert_state when withState.
func scanWebhookState(row interface{ Scan(...any) error }, withState bool) (store.Webhook, store.AlertState, error) {
	var w store.Webhook
	var st store.AlertState
	var alert, reason sql.NullString
	var codes, state string
	var created, updated int64
	var lastDelivery, lastSuccess, failingSince sql.NullInt64
	dest := []any{&w.ID, &w.AccountID, &w.Event, &w.URL, &w.Secret, &alert, &w.SendAlertEmail, &w.SkipErrors,
		&codes, &w.RetryOnError, &w.MaxThroughputPerMinute, &w.Status, &w.Version, &created, &updated,
		&lastDelivery, &lastSuccess, &w.ConsecutiveFailures, &failingSince, &w.FailingDeliveries, &reason}
	if withState {
		dest = append(dest, &state)
	}
	if err := row.Scan(dest...); err != nil {
		return w, st, err
	}
	w.AlertEmail, w.DisabledReason = alert.String, reason.String
	if err := json.Unmarshal([]byte(codes), &w.SkipErrorCodes); err != nil {
		return w, st, fmt.Errorf("webhook %d: skip_error_codes: %w", w.ID, err)
	}
	w.CreatedAt, w.UpdatedAt = fromMs(created), fromMs(updated)
	w.LastDeliveryAt, w.LastSuccessAt, w.FailingSince = fromMs(lastDelivery.Int64), fromMs(lastSuccess.Int64), fromMs(failingSince.Int64)
	if withState {
		var err error
		if st, err = store.DecodeAlertState([]byte(state)); err != nil {
			return w, st, fmt.Errorf("webhook %d: alert_state: %w", w.ID, err)
		}
	}
	return w, st, nil
}

func encodeCodes(codes []string) string {
	if codes == nil {
		codes = []string{}
	}
	b, _ := json.Marshal(codes)
	return string(b)
}

func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) (store.Webhook, error) {
	w.Version = 1
	if w.Status == "" {
		w.Status = store.WebhookActive
	}
	if w.SkipErrorCodes == nil {
		w.SkipErrorCodes = []string{}
	}
	w.CreatedAt = fromMs(ms(w.CreatedAt))
	w.UpdatedAt = w.CreatedAt
	err := s.write(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = ?`, w.AccountID).Scan(&exists); err != nil {
			return fmt.Errorf("get account %d: %w", w.AccountID, notFound(err))
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO webhooks (account_id, event, url, secret, alert_email, send_alert_email,
			skip_errors, skip_error_codes, retry_on_error, max_throughput_per_minute, status, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			w.AccountID, w.Event, w.URL, w.Secret, nullString(w.AlertEmail), w.SendAlertEmail, w.SkipErrors,
			encodeCodes(w.SkipErrorCodes), w.RetryOnError, w.MaxThroughputPerMinute, w.Status, w.Version,
			ms(w.CreatedAt), ms(w.UpdatedAt)).Scan(&w.ID)
		if err != nil {
			return fmt.Errorf("insert webhook: %w", err)
		}
		return nil
	})
	return w, err
}

func (s *Store) GetWebhook(ctx context.Context, accountID, id int64) (store.Webhook, error) {
	w, err := scanWebhook(s.rdb.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ? AND account_id = ?`, id, accountID))
	if err != nil {
		return w, fmt.Errorf("get webhook %d: %w", id, notFound(err))
	}
	return w, nil
}

func (s *Store) WebhookByID(ctx context.Context, id int64) (store.Webhook, error) {
	w, err := scanWebhook(s.reads.webhookByID.QueryRowContext(ctx, id))
	if err != nil {
		return w, fmt.Errorf("get webhook %d: %w", id, notFound(err))
	}
	return w, nil
}

func (s *Store) WebhooksByID(ctx context.Context, ids []int64) (map[int64]store.Webhook, error) {
	hooks := make(map[int64]store.Webhook, len(ids))
	err := queryIn(ctx, s.rdb, ids, func(marks string) string {
		return `SELECT ` + webhookColumns + ` FROM webhooks WHERE id IN (` + marks + `)`
	}, func(rows *sql.Rows) error {
		w, err := scanWebhook(rows)
		if err != nil {
			return err
		}
		hooks[w.ID] = w
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get webhooks: %w", err)
	}
	return hooks, nil
}

func (s *Store) ListWebhooks(ctx context.Context, accountID int64, f store.WebhookFilter, p store.Page) ([]store.Webhook, int, error) {
	where := `account_id = ?`
	args := []any{accountID}
	if f.Event != "" {
		where += ` AND event = ?`
		args = append(args, f.Event)
	}
	var total int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count webhooks: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE `+where+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		append(args, p.Size, p.Offset())...)
	if err != nil {
		return nil, 0, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	list := []store.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list webhooks: %w", err)
		}
		list = append(list, w)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list webhooks: %w", err)
	}
	return list, total, nil
}

func (s *Store) UpdateWebhook(ctx context.Context, accountID, id int64, update func(*store.Webhook) error) (store.Webhook, error) {
	var w store.Webhook
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		w, err = scanWebhook(tx.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ? AND account_id = ?`, id, accountID))
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
		w.UpdatedAt = fromMs(ms(w.UpdatedAt))
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET event = ?, url = ?, secret = ?, alert_email = ?, send_alert_email = ?,
			skip_errors = ?, skip_error_codes = ?, retry_on_error = ?, max_throughput_per_minute = ?, status = ?,
			version = ?, updated_at = ? WHERE id = ?`,
			w.Event, w.URL, w.Secret, nullString(w.AlertEmail), w.SendAlertEmail, w.SkipErrors, encodeCodes(w.SkipErrorCodes),
			w.RetryOnError, w.MaxThroughputPerMinute, w.Status, w.Version, ms(w.UpdatedAt), id)
		if err != nil {
			return fmt.Errorf("update webhook %d: %w", id, err)
		}
		if err := writeHealth(ctx, tx, w); err != nil {
			return err
		}
		if before != store.WebhookDisabled && w.Status == store.WebhookDisabled {
			return cancelPending(ctx, tx, id, "webhook disabled", w.UpdatedAt)
		}
		return nil
	})
	return w, err
}

// writeHealth stores w's health fields.
func writeHealth(ctx context.Context, tx *sql.Tx, w store.Webhook) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhooks SET last_delivery_at = ?, last_success_at = ?, consecutive_failures = ?,
		failing_since = ?, failing_deliveries = ?, disabled_reason = ? WHERE id = ?`,
		nullMs(w.LastDeliveryAt), nullMs(w.LastSuccessAt), w.ConsecutiveFailures, nullMs(w.FailingSince),
		w.FailingDeliveries, nullString(w.DisabledReason), w.ID)
	if err != nil {
		return fmt.Errorf("update health of webhook %d: %w", w.ID, err)
	}
	return nil
}

// cancelPending cancels the webhook's pending deliveries, those of fan-outs included.
func cancelPending(ctx context.Context, tx *sql.Tx, webhookID int64, reason string, now time.Time) error {
	if _, err := materialize(ctx, tx, fanoutsToWebhook, webhookID); err != nil {
		return fmt.Errorf("cancel deliveries of webhook %d: %w", webhookID, err)
	}
	_, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'cancelled', completed_at = ?, next_attempt_at = NULL,
		lease_owner = NULL, last_error = ? WHERE status = 'pending' AND id IN (`+everyBucket+
		`SELECT d.id FROM b`+ofWebhook+`)`,
		ms(now), reason, webhookID)
	if err != nil {
		return fmt.Errorf("cancel deliveries of webhook %d: %w", webhookID, err)
	}
	return nil
}

func (s *Store) DeleteWebhook(ctx context.Context, accountID, id int64, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND account_id = ?`, id, accountID)
		if err != nil {
			return fmt.Errorf("delete webhook %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete webhook %d: %w", id, store.ErrNotFound)
		}
		return cancelPending(ctx, tx, id, "webhook deleted", now)
	})
}
