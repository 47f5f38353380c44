package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookrelay/hookrelay/internal/store"
)

// lockHealthSQL reads the webhooks and their alert states and locks them FOR NO KEY UPDATE, in
// id order (rows are sorted before they are locked), so that two calls with overlapping webhooks
// never wait for each other in a cycle. Under READ COMMITTED a row another transaction changed
// meanwhile is read as that transaction committed it, once it has.
const lockHealthSQL = `SELECT ` + webhookColumns + `, alert_state FROM webhooks WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`

// writeHealthSQL stores the health, status and alert state of a batch of webhooks.
const writeHealthSQL = `UPDATE webhooks w SET status = u.status, version = u.version, updated_at = u.updated_at,
	last_delivery_at = u.last_delivery_at, last_success_at = u.last_success_at,
	consecutive_failures = u.consecutive_failures, failing_since = u.failing_since,
	failing_deliveries = u.failing_deliveries, disabled_reason = NULLIF(u.disabled_reason, ''),
	alert_state = u.alert_state::jsonb, alert_wait_from = u.alert_wait_from
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::int[],
	$8::timestamptz[], $9::int[], $10::text[], $11::text[], $12::timestamptz[])
	AS u(id, status, version, updated_at, last_delivery_at, last_success_at, consecutive_failures,
		failing_since, failing_deliveries, disabled_reason, alert_state, alert_wait_from)
WHERE w.id = u.id`

const insertAlertSQL = `INSERT INTO alerts (account_id, webhook_id, kind, recipient, url, event, failures,
	first_failure_at, last_failure_at, last_status_code, last_error, events, reason, state, tries, next_try_at,
	send_error, created_at, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`

// healthWrites collects what one UpdateHealth call stores, as the arrays of writeHealthSQL.
type healthWrites struct {
	ids, versions                           []int64
	statuses, reasons, states               []string
	updated                                 []time.Time
	lastDelivery, lastSuccess, failingSince []pgtype.Timestamptz
	waitFrom                                []pgtype.Timestamptz
	consecutiveFailures, failingDeliveries  []int32
	cancelIDs                               []int64
	cancelReasons                           []string
	cancelAt                                []time.Time
	alerts                                  []store.Alert
}

func (h *healthWrites) add(w store.Webhook, st []byte, pending int, lastAlertAt time.Time) {
	h.ids = append(h.ids, w.ID)
	h.statuses = append(h.statuses, w.Status)
	h.versions = append(h.versions, w.Version)
	h.updated = append(h.updated, ts(w.UpdatedAt))
	h.lastDelivery = append(h.lastDelivery, nullTS(w.LastDeliveryAt))
	h.lastSuccess = append(h.lastSuccess, nullTS(w.LastSuccessAt))
	h.consecutiveFailures = append(h.consecutiveFailures, int32(w.ConsecutiveFailures))
	h.failingSince = append(h.failingSince, nullTS(w.FailingSince))
	h.failingDeliveries = append(h.failingDeliveries, int32(w.FailingDeliveries))
	h.reasons = append(h.reasons, w.DisabledReason)
	h.states = append(h.states, string(st))
	wait := pgtype.Timestamptz{}
	if pending > 0 {
		// The zero time too (a valid timestamptz, long past): such failures are due at once.
		wait = pgtype.Timestamptz{Time: ts(lastAlertAt), Valid: true}
	}
	h.waitFrom = append(h.waitFrom, wait)
}

// sameHealth reports whether a and b store the same status and health.
func sameHealth(a, b store.Webhook) bool {
	return a.Status == b.Status && a.Version == b.Version && ts(a.UpdatedAt).Equal(ts(b.UpdatedAt)) &&
		ts(a.LastDeliveryAt).Equal(ts(b.LastDeliveryAt)) && ts(a.LastSuccessAt).Equal(ts(b.LastSuccessAt)) &&
		a.ConsecutiveFailures == b.ConsecutiveFailures && ts(a.FailingSince).Equal(ts(b.FailingSince)) &&
		a.FailingDeliveries == b.FailingDeliveries && a.DisabledReason == b.DisabledReason
}

// UpdateHealth runs in one transaction of two round trips, whatever the number of webhooks: the
// first begins it and locks every webhook (lockHealthSQL), the second stores everything the
// update changed and commits. The locks make it safe across nodes: a node that updates a webhook
// another node is updating waits for that commit and then sees its state (so, for example, two
// nodes never both queue the alert of the same failures). Webhooks it disables are locked FOR
// UPDATE before the cancelling of their deliveries is recorded, as by UpdateWebhook (see
// lockForDisableSQL); UpdateHealth carries it out once this has committed.
//
// The update runs once for each webhook, in the order of ids (repeats are ignored). The call is
// not retried: every lock it takes is taken in id order, as publishes, Complete and other
// UpdateHealth calls take theirs, so it is not expected to deadlock, and were it to, the error is
// returned and nothing was stored. Webhooks whose status, health and alert state came out
// unchanged are not written.
func (s *Store) applyHealth(ctx context.Context, ids []int64, update func(*store.Webhook, *store.AlertState) ([]store.Alert, error)) ([]store.Webhook, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	return s.updateHealth(ctx, sorted, ids, update)
}

type lockedWebhook struct {
	w     store.Webhook
	state []byte
	done  bool
}

func (s *Store) updateHealth(ctx context.Context, sorted, ids []int64, update func(*store.Webhook, *store.AlertState) ([]store.Alert, error)) ([]store.Webhook, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("update health: %w", err)
	}
	var tx pgx.Tx
	defer func() {
		// Unless it committed, the transaction is still open (or has failed): roll it back. A
		// rollback that fails closes the connection, and the pool discards a closed one, or one
		// left in a transaction.
		if tx != nil && c.Conn().PgConn().TxStatus() != 'I' {
			_ = tx.Rollback(ctx)
		}
		c.Release()
	}()

	// Round trip 1: begin and lock.
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(lockHealthSQL, sorted)
	br := c.SendBatch(ctx, b)
	tx = br.Tx()
	locked := make(map[int64]*lockedWebhook, len(sorted))
	if err := func() error {
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, _ := br.Query()
		defer rows.Close()
		for rows.Next() {
			var state []byte
			w, err := scanWebhookWith(rows, &state)
			if err != nil {
				return err
			}
			locked[w.ID] = &lockedWebhook{w: w, state: state}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return br.Close()
	}(); err != nil {
		return nil, fmt.Errorf("update health: lock webhooks: %w", err)
	}

	var h healthWrites
	var changed []store.Webhook
	for _, id := range ids {
		l := locked[id]
		if l == nil || l.done {
			continue // missing, or already done
		}
		l.done = true
		st, err := store.DecodeAlertState(l.state)
		if err != nil {
			return nil, fmt.Errorf("webhook %d: alert_state: %w", id, err)
		}
		before, beforeState := l.w, store.EncodeAlertState(st)
		w := l.w
		alerts, err := update(&w, &st)
		if err != nil {
			return nil, err
		}
		h.alerts = append(h.alerts, alerts...)
		w.ID, w.Version, w.UpdatedAt = id, before.Version, ts(w.UpdatedAt)
		if w.Status != before.Status {
			w.Version++
			changed = append(changed, w)
		}
		state := store.EncodeAlertState(st)
		if sameHealth(before, w) && bytes.Equal(state, beforeState) {
			continue
		}
		h.add(w, state, st.Pending, st.LastAlertAt)
		if before.Status != store.WebhookDisabled && w.Status == store.WebhookDisabled {
			h.cancelIDs = append(h.cancelIDs, id)
			h.cancelReasons = append(h.cancelReasons, "webhook disabled: "+w.DisabledReason)
			h.cancelAt = append(h.cancelAt, w.UpdatedAt)
		}
	}

	// Round trip 2: store and commit. The commit is queued in the batch, so it runs only if
	// every statement before it succeeded (after an error the server skips the rest).
	b = &pgx.Batch{}
	if len(h.cancelIDs) > 0 {
		b.Queue(lockForDisableSQL, h.cancelIDs)
	}
	if len(h.ids) > 0 {
		b.Queue(writeHealthSQL, h.ids, h.statuses, h.versions, h.updated, h.lastDelivery, h.lastSuccess,
			h.consecutiveFailures, h.failingSince, h.failingDeliveries, h.reasons, h.states, h.waitFrom)
	}
	for _, a := range h.alerts {
		b.Queue(insertAlertSQL, alertArgs(a)...)
	}
	if len(h.cancelIDs) > 0 {
		b.Queue(recordCancelSQL, h.cancelIDs, h.cancelReasons, h.cancelAt)
	}
	b.Queue(`COMMIT`)
	br = tx.SendBatch(ctx, b)
	defer br.Close()
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("update health: %w", err)
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, fmt.Errorf("update health: commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("update health: %w", pgx.ErrTxCommitRollback)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("update health: %w", err)
	}
	return changed, nil
}

func alertArgs(a store.Alert) []any {
	events := a.Events
	if events == nil {
		events = []string{}
	}
	next := pgtype.Timestamptz{}
	if a.State == store.AlertPending {
		next = pgtype.Timestamptz{Time: ts(a.NextTryAt), Valid: true}
	}
	return []any{a.AccountID, a.WebhookID, a.Kind, a.Recipient, a.URL, a.Event, a.Failures,
		nullTS(a.FirstFailureAt), nullTS(a.LastFailureAt), nullInt(a.LastStatusCode), nullString(a.LastError), events,
		nullString(a.Reason), a.State, a.Tries, next, nullString(a.SendError), ts(a.CreatedAt), nullTS(a.SentAt)}
}

func (s *Store) AlertsDue(ctx context.Context, before time.Time) ([]int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id FROM webhooks WHERE alert_wait_from IS NOT NULL AND alert_wait_from <= $1 ORDER BY id`, ts(before))
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("alerts due: %w", err)
	}
	return ids, nil
}

const alertColumns = `id, account_id, webhook_id, kind, recipient, url, event, failures, first_failure_at, last_failure_at,
	last_status_code, last_error, events, reason, state, tries, next_try_at, send_error, created_at, sent_at`

func scanAlert(row pgx.Row) (store.Alert, error) {
	var a store.Alert
	var first, last, next, sent pgtype.Timestamptz
	var code *int32
	var lastErr, reason, sendErr *string
	err := row.Scan(&a.ID, &a.AccountID, &a.WebhookID, &a.Kind, &a.Recipient, &a.URL, &a.Event, &a.Failures, &first, &last,
		&code, &lastErr, &a.Events, &reason, &a.State, &a.Tries, &next, &sendErr, &a.CreatedAt, &sent)
	if err != nil {
		return a, err
	}
	if a.Events == nil {
		a.Events = []string{}
	}
	if code != nil {
		a.LastStatusCode = int(*code)
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	a.LastError, a.Reason, a.SendError = deref(lastErr), deref(reason), deref(sendErr)
	a.FirstFailureAt, a.LastFailureAt, a.NextTryAt = fromTS(first), fromTS(last), fromTS(next)
	a.CreatedAt, a.SentAt = a.CreatedAt.UTC(), fromTS(sent)
	return a, nil
}

// claimAlertsSQL leases due alerts as claimSQL leases deliveries: SKIP LOCKED lets nodes claim
// at once, each taking alerts no other claim holds, and the lease moves next_try_at past now so
// a claimed alert is not due again until its lease ends.
const claimAlertsSQL = `WITH due AS MATERIALIZED (
	SELECT id AS due_id, next_try_at AS due_at FROM alerts
	WHERE state = 'pending' AND next_try_at <= $1
	ORDER BY next_try_at
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), claimed AS (
	UPDATE alerts SET next_try_at = $3, lease_owner = $4
	FROM due WHERE id = due.due_id
	RETURNING ` + alertColumns + `, due.due_at
)
SELECT ` + alertColumns + ` FROM claimed ORDER BY due_at, id`

func (s *Store) ClaimAlerts(ctx context.Context, owner string, now time.Time, limit int, leaseUntil time.Time) ([]store.Alert, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, claimAlertsSQL, ts(now), limit, ts(leaseUntil), owner)
	alerts, err := collect(rows, scanAlert)
	if err != nil {
		return nil, fmt.Errorf("claim alerts: %w", err)
	}
	return alerts, nil
}

func (s *Store) FinishAlert(ctx context.Context, owner string, a store.Alert) error {
	next := pgtype.Timestamptz{}
	if a.State == store.AlertPending {
		next = pgtype.Timestamptz{Time: ts(a.NextTryAt), Valid: true}
	}
	_, err := s.pool.Exec(ctx, `UPDATE alerts SET state = $1, tries = $2, next_try_at = $3, send_error = $4, sent_at = $5,
		lease_owner = NULL WHERE id = $6 AND lease_owner = $7`,
		a.State, a.Tries, next, nullString(a.SendError), nullTS(a.SentAt), a.ID, owner)
	if err != nil {
		return fmt.Errorf("finish alert %d: %w", a.ID, err)
	}
	return nil
}

func (s *Store) ListAlerts(ctx context.Context, accountID, webhookID int64, p store.Page) ([]store.Alert, int, error) {
	return listPage(ctx, s.pool, "alerts", alertColumns, `webhook_id = $1 AND account_id = $2`, []any{webhookID, accountID}, p, scanAlert)
}
