package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hookrelay/hookrelay/internal/store"
)

// statements are the queries on the hot paths (publish, claim, complete), prepared once.
type statements struct {
	all []*sql.Stmt

	accountExists *sql.Stmt
	fanout        *sql.Stmt
	idempotent    *sql.Stmt
	forgetKey     *sql.Stmt
	claim         *sql.Stmt
	nextDelivery  *sql.Stmt
	// The fan-outs' (sqlite/fanouts.go): the oldest one's time, the earliest due delivery's,
	// the oldest ones, dropping those a claim took, and keeping the rest of one taken in part.
	fanoutHead  *sql.Stmt
	dueHead     *sql.Stmt
	takeFanouts *sql.Stmt
	dropFanouts *sql.Stmt
	trimFanout  *sql.Stmt

	insertEvents    multiRow
	insertLeased    multiRow // pending deliveries leased to the engine as they are stored
	insertPending   multiRow // pending deliveries, not leased
	insertCancelled multiRow // deliveries to a disabled webhook
	insertFanouts   multiRow // events' deliveries not leased, one row per event
	complete        multiRow
	// completeSucceeded is complete for successful attempts under one owner (?1).
	completeSucceeded multiRow
	insertAttempts    multiRow
	health            multiRow
	// healthTimes is health for webhooks whose attempts since the last flush changed only
	// when they were last attempted and last succeeded, as most do.
	healthTimes multiRow
}

// chunks are the row counts multi-row statements are prepared for: a batch of n rows runs as
// chunks of 64, then 8, then single rows, so a call costs a few statements, not one per row
// (each statement crosses from Go into SQLite and back, which costs more than a row).
var chunks = []int{64, 8, 1}

// multiRow is one statement prepared for each size in chunks. Its rows may share leading
// parameters (?1 … ?shared), bound once per statement: every value bound is converted by
// database/sql and copied into SQLite, which in a publish costs more than the rows' own work.
type multiRow struct {
	shared int
	cols   int         // parameters of each row's own
	stmts  []*sql.Stmt // by index in chunks
	buf    []any       // the shared values and a chunk's rows; the writer goroutine's only
}

// run executes the statement for rows (len(args) = rows × cols) in chunks, with shared giving
// the parameters the rows share.
func (m *multiRow) run(ctx context.Context, tx *sql.Tx, shared, args []any) error {
	if len(shared) != m.shared {
		return fmt.Errorf("multi-row statement: %d shared values for %d parameters", len(shared), m.shared)
	}
	defer clear(m.buf) // hold no values past the call
	for len(args) > 0 {
		rows := len(args) / m.cols
		i := 0
		for chunks[i] > rows {
			i++
		}
		n := chunks[i] * m.cols
		call := args[:n]
		if m.shared > 0 {
			m.buf = append(append(m.buf[:0], shared...), call...)
			call = m.buf
		}
		if _, err := tx.StmtContext(ctx, m.stmts[i]).ExecContext(ctx, call...); err != nil {
			return err
		}
		args = args[n:]
	}
	return nil
}

// values is rows copies of row, comma-separated.
func values(rows int, row string) string {
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// rowShape counts a row template's parameters: shared is the highest numbered one (?1 … ?N),
// cols the anonymous ones (?). SQLite numbers an anonymous parameter one past the highest
// number used so far, so the numbered ones must come first for the rows' own to follow them.
func rowShape(row string) (shared, cols int, err error) {
	for i := 0; i < len(row); i++ {
		if row[i] != '?' {
			continue
		}
		j := i + 1
		for j < len(row) && row[j] >= '0' && row[j] <= '9' {
			j++
		}
		if j == i+1 {
			cols++
			continue
		}
		if cols > 0 {
			return 0, 0, fmt.Errorf("row %q: numbered parameter after an anonymous one", row)
		}
		n, _ := strconv.Atoi(row[i+1 : j])
		shared = max(shared, n)
	}
	return shared, cols, nil
}

// params is "(?, ?, …)" with n marks.
func params(n int) string { return "(" + placeholders(n) + ")" }

// preparer returns a function that prepares query on db into dst and adds it to all.
func preparer(ctx context.Context, db *sql.DB, all *[]*sql.Stmt) func(dst **sql.Stmt, query string) error {
	return func(dst **sql.Stmt, query string) error {
		s, err := db.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", query, err)
		}
		*dst = s
		*all = append(*all, s)
		return nil
	}
}

func closeAll(all []*sql.Stmt) {
	for _, s := range all {
		s.Close()
	}
}

func (st *statements) prepare(ctx context.Context, wdb *sql.DB) error {
	prep := preparer(ctx, wdb, &st.all)
	multi := func(m *multiRow, row string, query func(values string) string) error {
		var err error
		if m.shared, m.cols, err = rowShape(row); err != nil {
			return err
		}
		m.stmts = make([]*sql.Stmt, len(chunks))
		for i, n := range chunks {
			if err := prep(&m.stmts[i], query(values(n, row))); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.Join(
		prep(&st.accountExists, `SELECT 1 FROM accounts WHERE id = ?`),
		prep(&st.fanout, `SELECT id, status, version FROM webhooks WHERE account_id = ? AND event = ? ORDER BY id`),
		prep(&st.idempotent, `SELECT id, type, deliveries, created_at FROM events WHERE account_id = ? AND idempotency_key = ?`),
		prep(&st.forgetKey, `UPDATE events SET idempotency_key = NULL WHERE id = ?`),
		// LIMIT takes its value through CAST: SQLite reads a bare parameter there into the plan,
		// so each new limit (the engine asks for what it has room for) would compile the
		// statement again, 14% of a claim's time.
		prep(&st.claim, `UPDATE deliveries SET next_attempt_at = ?, lease_owner = ?
			WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT CAST(? AS INTEGER))
			RETURNING id, account_id, webhook_id, event_id, event, attempts, created_at`),
		// The highest delivery id ever given, as AUTOINCREMENT keeps it or a fan-out holds it,
		// plus one.
		prep(&st.nextDelivery, `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'), 0),
			coalesce((SELECT max(id) FROM deliveries), 0),
			coalesce((SELECT first_delivery + deliveries - 1 FROM fanouts ORDER BY first_delivery DESC LIMIT 1), 0)) + 1`),
		prep(&st.fanoutHead, `SELECT created_at FROM fanouts ORDER BY first_delivery LIMIT 1`),
		prep(&st.dueHead, `SELECT next_attempt_at FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at LIMIT 1`),
		prep(&st.takeFanouts, `SELECT first_delivery, account_id, event_id, event, created_at, webhooks FROM fanouts
			ORDER BY first_delivery LIMIT CAST(? AS INTEGER)`),
		prep(&st.dropFanouts, `DELETE FROM fanouts WHERE first_delivery < ?`),
		prep(&st.trimFanout, `UPDATE fanouts SET first_delivery = ?, deliveries = ?, webhooks = ? WHERE first_delivery = ?`),
		multi(&st.insertEvents, params(8), func(v string) string {
			return `INSERT INTO events (id, account_id, type, body, idempotency_key, deliveries, live, created_at) VALUES ` + v
		}),
		// The owner (?1) and the lease's end (?2) are the same for every row.
		multi(&st.insertLeased, `(?1, ?2, ?, ?, ?, ?, ?, ?, '`+store.StatusPending+`')`, func(v string) string {
			return `INSERT INTO deliveries (lease_owner, next_attempt_at, id, account_id, webhook_id, event_id, event, created_at,
				status) VALUES ` + v
		}),
		multi(&st.insertFanouts, params(7), func(v string) string {
			return `INSERT INTO fanouts (first_delivery, deliveries, account_id, event_id, event, created_at, webhooks) VALUES ` + v
		}),
		multi(&st.insertPending, `(?, ?, ?, ?, ?, ?, ?, '`+store.StatusPending+`')`, func(v string) string {
			return `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, created_at, next_attempt_at, status)
				VALUES ` + v
		}),
		multi(&st.insertCancelled, `(?, ?, ?, ?, ?, ?, ?, '`+store.StatusCancelled+`', 'webhook disabled')`, func(v string) string {
			return `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, created_at, completed_at, status,
				last_error) VALUES ` + v
		}),
		// An outcome with an attempt (attempted = 1) replaces the last status code and error;
		// one without keeps them unless it brings its own error. Applied only under its lease.
		multi(&st.complete, params(8), func(v string) string {
			return `UPDATE deliveries SET status = o.status, attempts = attempts + o.attempted,
				last_status_code = CASE WHEN o.attempted = 1 THEN o.code ELSE last_status_code END,
				last_error = CASE WHEN o.attempted = 1 OR o.err IS NOT NULL THEN o.err ELSE last_error END,
				next_attempt_at = o.next, completed_at = o.completed, lease_owner = NULL
				FROM (SELECT column1 AS id, column2 AS owner, column3 AS status, column4 AS attempted, column5 AS code,
					column6 AS err, column7 AS next, column8 AS completed FROM (VALUES ` + v + `)) AS o
				WHERE deliveries.id = o.id AND deliveries.lease_owner = o.owner`
		}),
		multi(&st.completeSucceeded, `(?1, ?, ?, ?)`, func(v string) string {
			return `UPDATE deliveries SET status = '` + store.StatusSucceeded + `', attempts = attempts + 1,
				last_status_code = o.code, last_error = NULL, next_attempt_at = NULL, completed_at = o.completed,
				lease_owner = NULL
				FROM (SELECT column1 AS owner, column2 AS id, column3 AS code, column4 AS completed FROM (VALUES ` + v + `)) AS o
				WHERE deliveries.id = o.id AND deliveries.lease_owner = o.owner`
		}),
		multi(&st.health, params(12), func(v string) string {
			return `UPDATE webhooks SET status = h.status, version = h.version, updated_at = h.updated, alert_state = h.state,
				alert_wait_from = h.wait, last_delivery_at = h.delivery, last_success_at = h.success,
				consecutive_failures = h.failures, failing_since = h.since, failing_deliveries = h.failing,
				disabled_reason = h.reason
				FROM (SELECT column1 AS id, column2 AS status, column3 AS version, column4 AS updated, column5 AS state,
					column6 AS wait, column7 AS delivery, column8 AS success, column9 AS failures, column10 AS since,
					column11 AS failing, column12 AS reason FROM (VALUES ` + v + `)) AS h
				WHERE webhooks.id = h.id`
		}),
		multi(&st.healthTimes, params(3), func(v string) string {
			return `UPDATE webhooks SET last_delivery_at = h.delivery, last_success_at = h.success
				FROM (SELECT column1 AS id, column2 AS delivery, column3 AS success FROM (VALUES ` + v + `)) AS h
				WHERE webhooks.id = h.id`
		}),
		multi(&st.insertAttempts, params(7), func(v string) string {
			return `INSERT INTO attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body) VALUES ` + v
		}),
	)
}

// eventBodiesSQL reads the bodies of the events whose ids are in the JSON array ?1.
const eventBodiesSQL = `SELECT e.id, e.body FROM json_each(?) j JOIN events e ON e.id = j.value`

// reads are the queries the read pool runs for every request or newly seen webhook, prepared
// once: compiling one from its text was 40% of a webhook read (30 µs before, 18 µs after).
type reads struct {
	all []*sql.Stmt

	webhookByID  *sql.Stmt
	apiKeyByHash *sql.Stmt
	// eventBodies takes its ids as one JSON array, so that one statement, parsed once, serves
	// any number of them: a list of placeholders made a new statement for every call, and
	// parsing it cost about as much as reading the bodies (BENCHMARKS.md, twelfth session).
	eventBodies *sql.Stmt
}

func (rs *reads) prepare(ctx context.Context, rdb *sql.DB) error {
	prep := preparer(ctx, rdb, &rs.all)
	return errors.Join(
		prep(&rs.webhookByID, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`),
		prep(&rs.apiKeyByHash, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`),
		prep(&rs.eventBodies, eventBodiesSQL),
	)
}

func (rs *reads) close() { closeAll(rs.all) }

func (st *statements) close() { closeAll(st.all) }
