package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// UpdateHealth reads the webhooks in chunks and writes their new state back with multi-row
// statements: it runs every second for every webhook that had attempts, so with thousands of
// webhooks one statement per webhook would take the writer from the deliveries. It keeps the
// writer's cache unless a webhook's status changes (the cache holds statuses), and reads only
// the webhooks the cache does not hold as it last wrote them.
func (s *Store) UpdateHealth(ctx context.Context, ids []int64, update func(*store.Webhook, *store.AlertState) ([]store.Alert, error)) ([]store.Webhook, error) {
	var changed []store.Webhook
	var cancels []cancellation // of the webhooks the flush disabled
	err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
		changed, cancels = changed[:0], cancels[:0]
		byID := make(map[int64]healthRow, len(ids))
		var unknown []int64
		for _, id := range ids {
			if h, ok := s.cache.health[id]; ok {
				byID[id] = h.clone()
			} else {
				unknown = append(unknown, id)
			}
		}
		err := queryIn(ctx, tx, unknown, func(marks string) string {
			return `SELECT ` + webhookColumns + `, alert_state FROM webhooks WHERE id IN (` + marks + `)`
		}, func(rows *sql.Rows) error {
			var h healthRow
			var err error
			if h.w, h.st, err = scanWebhookState(rows, true); err != nil {
				return err
			}
			h.state = store.EncodeAlertState(h.st)
			byID[h.w.ID] = h
			return nil
		})
		if err != nil {
			return fmt.Errorf("get webhooks: %w", err)
		}
		// Most webhooks change only their last attempt's times: their rows are written by a
		// statement of those two columns, which binds a quarter of the values.
		healthArgs, timesArgs := []any(nil), make([]any, 0, len(ids)*s.stmts.healthTimes.cols)
		for _, id := range ids {
			f, ok := byID[id]
			if !ok {
				continue // deleted
			}
			w, st, before := f.w, f.st, f.w
			alerts, err := update(&w, &st)
			if err != nil {
				return err
			}
			var wait any
			if st.Pending > 0 {
				wait = ms(st.LastAlertAt)
			}
			if w.Status != before.Status {
				w.Version++
				w.UpdatedAt = fromMs(ms(w.UpdatedAt))
				changed = append(changed, w)
				s.cache.reset() // publishes after this one read the new status
			}
			state := store.EncodeAlertState(st)
			if sameButTimes(before, w) && bytes.Equal(state, f.state) {
				timesArgs = append(timesArgs, id, nullMs(w.LastDeliveryAt), nullMs(w.LastSuccessAt))
			} else {
				healthArgs = append(healthArgs, id, w.Status, w.Version, ms(w.UpdatedAt), string(state), wait,
					nullMs(w.LastDeliveryAt), nullMs(w.LastSuccessAt), w.ConsecutiveFailures, nullMs(w.FailingSince),
					w.FailingDeliveries, nullString(w.DisabledReason))
			}
			if len(s.cache.health) >= maxHealthCached {
				clear(s.cache.health) // bounded: beyond this many webhooks the flush reads again
			}
			if s.cache.health[id], err = stored(before, w, state); err != nil {
				return err
			}
			for _, a := range alerts {
				if err := insertAlert(ctx, tx, a); err != nil {
					return err
				}
			}
			if before.Status != store.WebhookDisabled && w.Status == store.WebhookDisabled {
				c := cancellation{w: w, reason: "webhook disabled: " + w.DisabledReason, at: w.UpdatedAt}
				if err := s.recordCancel(ctx, tx, &c); err != nil {
					return err
				}
				cancels = append(cancels, c)
			}
		}
		if err := s.stmts.health.run(ctx, tx, nil, healthArgs); err != nil {
			return fmt.Errorf("update health: %w", err)
		}
		if err := s.stmts.healthTimes.run(ctx, tx, nil, timesArgs); err != nil {
			return fmt.Errorf("update health: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range cancels {
		s.cancelAfter(ctx, c, 0) // the health monitor does not wait for it
	}
	return changed, nil
}

// maxHealthCached bounds the webhooks the writer remembers for health flushes (a few hundred
// bytes each).
var maxHealthCached = 50_000

// healthRow is a webhook and its alert state as stored, and that state encoded.
type healthRow struct {
	w     store.Webhook
	st    store.AlertState
	state []byte
}

// sameButTimes reports whether the health columns of a and b, those of the last attempt's
// times aside, are stored the same.
func sameButTimes(a, b store.Webhook) bool {
	return a.Status == b.Status && a.Version == b.Version && ms(a.UpdatedAt) == ms(b.UpdatedAt) &&
		a.ConsecutiveFailures == b.ConsecutiveFailures && nullMs(a.FailingSince) == nullMs(b.FailingSince) &&
		a.FailingDeliveries == b.FailingDeliveries && a.DisabledReason == b.DisabledReason
}

// stored is the webhook as reading it back after the health statement would give: before with
// the columns the statement writes taken from w (times to the millisecond, in UTC), and the
// alert state decoded from what was written.
func stored(before, w store.Webhook, state []byte) (healthRow, error) {
	h := healthRow{w: before, state: state}
	h.w.Status, h.w.Version, h.w.UpdatedAt, h.w.DisabledReason = w.Status, w.Version, fromMs(ms(w.UpdatedAt)), w.DisabledReason
	h.w.LastDeliveryAt, h.w.LastSuccessAt, h.w.FailingSince = fromNullMs(w.LastDeliveryAt), fromNullMs(w.LastSuccessAt), fromNullMs(w.FailingSince)
	h.w.ConsecutiveFailures, h.w.FailingDeliveries = w.ConsecutiveFailures, w.FailingDeliveries
	if string(state) != "{}" { // the state of a webhook that never failed decodes to the zero value
		var err error
		if h.st, err = store.DecodeAlertState(state); err != nil {
			return h, fmt.Errorf("webhook %d: alert_state: %w", w.ID, err)
		}
	}
	return h.clone(), nil
}

// clone copies the slices, which update may change in place.
func (h healthRow) clone() healthRow {
	h.w.SkipErrorCodes = slices.Clone(h.w.SkipErrorCodes)
	h.st.PendingEvents = slices.Clone(h.st.PendingEvents)
	return h
}

// fromNullMs is t as nullMs stores it and fromMs reads it back.
func fromNullMs(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return fromMs(ms(t))
}

func insertAlert(ctx context.Context, tx *sql.Tx, a store.Alert) error {
	events := a.Events
	if events == nil {
		events = []string{}
	}
	ev, _ := json.Marshal(events)
	var next any
	if a.State == store.AlertPending {
		next = ms(a.NextTryAt)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO alerts (account_id, webhook_id, kind, recipient, url, event, failures,
		first_failure_at, last_failure_at, last_status_code, last_error, events, reason, state, tries, next_try_at,
		send_error, created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.AccountID, a.WebhookID, a.Kind, a.Recipient, a.URL, a.Event, a.Failures, nullMs(a.FirstFailureAt),
		nullMs(a.LastFailureAt), nullInt(a.LastStatusCode), nullString(a.LastError), string(ev), nullString(a.Reason),
		a.State, a.Tries, next, nullString(a.SendError), ms(a.CreatedAt), nullMs(a.SentAt))
	if err != nil {
		return fmt.Errorf("insert alert for webhook %d: %w", a.WebhookID, err)
	}
	return nil
}

func (s *Store) AlertsDue(ctx context.Context, before time.Time) ([]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM webhooks WHERE alert_wait_from IS NOT NULL AND alert_wait_from <= ? ORDER BY id`, ms(before))
	if err != nil {
		return nil, fmt.Errorf("alerts due: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("alerts due: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

const alertColumns = `id, account_id, webhook_id, kind, recipient, url, event, failures, first_failure_at, last_failure_at,
	last_status_code, last_error, events, reason, state, tries, next_try_at, send_error, created_at, sent_at`

func scanAlert(row interface{ Scan(...any) error }) (store.Alert, error) {
	var a store.Alert
	var first, last, code, next, sent sql.NullInt64
	var lastErr, reason, sendErr sql.NullString
	var events string
	var created int64
	err := row.Scan(&a.ID, &a.AccountID, &a.WebhookID, &a.Kind, &a.Recipient, &a.URL, &a.Event, &a.Failures, &first, &last,
		&code, &lastErr, &events, &reason, &a.State, &a.Tries, &next, &sendErr, &created, &sent)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(events), &a.Events); err != nil {
		return a, fmt.Errorf("alert %d: events: %w", a.ID, err)
	}
	a.FirstFailureAt, a.LastFailureAt, a.NextTryAt = fromMs(first.Int64), fromMs(last.Int64), fromMs(next.Int64)
	a.CreatedAt, a.SentAt = fromMs(created), fromMs(sent.Int64)
	a.LastStatusCode, a.LastError, a.Reason, a.SendError = int(code.Int64), lastErr.String, reason.String, sendErr.String
	return a, nil
}

func (s *Store) ClaimAlerts(ctx context.Context, owner string, now time.Time, limit int, leaseUntil time.Time) ([]store.Alert, error) {
	var alerts []store.Alert
	err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
		alerts = alerts[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE alerts SET next_try_at = ?, lease_owner = ? WHERE id IN (
			SELECT id FROM alerts WHERE state = 'pending' AND next_try_at <= ? ORDER BY next_try_at LIMIT ?)
			RETURNING `+alertColumns, ms(leaseUntil), owner, ms(now), limit)
		if err != nil {
			return fmt.Errorf("claim alerts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAlert(rows)
			if err != nil {
				return fmt.Errorf("claim alerts: %w", err)
			}
			alerts = append(alerts, a)
		}
		return rows.Err()
	})
	return alerts, err
}

func (s *Store) FinishAlert(ctx context.Context, owner string, a store.Alert) error {
	return s.writeKeeping(ctx, func(tx *sql.Tx) error {
		var next any
		if a.State == store.AlertPending {
			next = ms(a.NextTryAt)
		}
		_, err := tx.ExecContext(ctx, `UPDATE alerts SET state = ?, tries = ?, next_try_at = ?, send_error = ?, sent_at = ?,
			lease_owner = NULL WHERE id = ? AND lease_owner = ?`,
			a.State, a.Tries, next, nullString(a.SendError), nullMs(a.SentAt), a.ID, owner)
		if err != nil {
			return fmt.Errorf("finish alert %d: %w", a.ID, err)
		}
		return nil
	})
}

func (s *Store) ListAlerts(ctx context.Context, accountID, webhookID int64, p store.Page) ([]store.Alert, int, error) {
	var total int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM alerts WHERE webhook_id = ? AND account_id = ?`, webhookID, accountID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count alerts: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE webhook_id = ? AND account_id = ?
		ORDER BY id DESC LIMIT ? OFFSET ?`, webhookID, accountID, p.Size, p.Offset())
	if err != nil {
		return nil, 0, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	list := []store.Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list alerts: %w", err)
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list alerts: %w", err)
	}
	return list, total, nil
}
