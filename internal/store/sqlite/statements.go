package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are the queries on the hot paths (publish, claim, complete), prepared once.
type statements struct {
	all []*sql.Stmt

	accountExists   *sql.Stmt
	fanout          *sql.Stmt
	idempotent      *sql.Stmt
	forgetKey       *sql.Stmt
	insertEvent     *sql.Stmt
	insertDelivery  *sql.Stmt
	claim           *sql.Stmt
	webhookVersion  *sql.Stmt
	complete        *sql.Stmt
	insertAttempt   *sql.Stmt
	countDeliveries *sql.Stmt
}

func (st *statements) prepare(ctx context.Context, wdb, rdb *sql.DB) error {
	prep := func(db *sql.DB, dst **sql.Stmt, query string) error {
		s, err := db.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", query, err)
		}
		*dst = s
		st.all = append(st.all, s)
		return nil
	}
	return errors.Join(
		prep(wdb, &st.accountExists, `SELECT 1 FROM accounts WHERE id = ?`),
		prep(wdb, &st.fanout, `SELECT id, status FROM webhooks WHERE account_id = ? AND event = ? ORDER BY id`),
		prep(wdb, &st.idempotent, `SELECT id, type, deliveries, created_at FROM events WHERE account_id = ? AND idempotency_key = ?`),
		prep(wdb, &st.forgetKey, `UPDATE events SET idempotency_key = NULL WHERE id = ?`),
		prep(wdb, &st.insertEvent, `INSERT INTO events (id, account_id, type, body, idempotency_key, deliveries, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
		prep(wdb, &st.insertDelivery, `INSERT INTO deliveries (account_id, webhook_id, event_id, event, status, last_error,
			next_attempt_at, created_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		prep(wdb, &st.claim, `UPDATE deliveries SET next_attempt_at = ?, lease_owner = ?
			WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT ?)
			RETURNING id, account_id, webhook_id, event_id, event, attempts, created_at`),
		prep(wdb, &st.webhookVersion, `SELECT version FROM webhooks WHERE id = ?`),
		// ?2 is 1 when an attempt was made: its status code and error replace the last ones;
		// otherwise the last ones stay unless the outcome brings its own error.
		prep(wdb, &st.complete, `UPDATE deliveries SET status = ?1, attempts = attempts + ?2,
			last_status_code = CASE WHEN ?2 = 1 THEN ?3 ELSE last_status_code END,
			last_error = CASE WHEN ?2 = 1 OR ?4 IS NOT NULL THEN ?4 ELSE last_error END,
			next_attempt_at = ?5, completed_at = ?6, lease_owner = NULL
			WHERE id = ?7 AND lease_owner = ?8`),
		prep(wdb, &st.insertAttempt, `INSERT INTO attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
		prep(rdb, &st.countDeliveries, `SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?`),
	)
}

func (st *statements) close() {
	for _, s := range st.all {
		s.Close()
	}
}
