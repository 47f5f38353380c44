package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

// UpdateWebhook runs updateWebhook. One that enables the webhook again while the cancelling of
// its disable is still under way cancels the rest first, a write at a time (in one write it
// would hold every publish and outcome behind it: 10.3 s for a million), and then runs again,
// update too.
func (s *Store) UpdateWebhook(ctx context.Context, accountID, id int64, update func(*store.Webhook) error) (store.Webhook, error) {
	for range 3 {
		w, unfinished, err := s.updateWebhook(ctx, accountID, id, update)
		if unfinished == nil {
			return w, err
		}
		run, err := s.startCancel(ctx, *unfinished)
		if err == nil {
			err = run.steps(ctx, s, time.Time{})
		}
		if err != nil {
			return store.Webhook{}, fmt.Errorf("update webhook %d: %w", id, err)
		}
		s.forget(id)
	}
	return store.Webhook{}, fmt.Errorf("update webhook %d: the cancelling of its deliveries is still under way; try again", id)
}

// errUnfinished ends an update that enables a webhook whose disable's cancelling is under way.
var errUnfinished = errors.New("cancelling under way")

// updateWebhook applies update in one write. When the update enables the webhook again while
// the cancelling of its disable is under way, it changes nothing and returns that cancelling.
func (s *Store) updateWebhook(ctx context.Context, accountID, id int64, update func(*store.Webhook) error) (store.Webhook, *cancellation, error) {
	var w store.Webhook
	var cancel, unfinished *cancellation
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
		switch {
		case before != store.WebhookDisabled && w.Status == store.WebhookDisabled:
			cancel = &cancellation{w: w, reason: "webhook disabled", at: w.UpdatedAt}
			return s.recordCancel(ctx, tx, cancel)
		case before == store.WebhookDisabled && w.Status != store.WebhookDisabled:
			c, err := recorded(ctx, tx, w)
			if err != nil || c == nil {
				return err
			}
			unfinished = c
			return errUnfinished
		}
		return nil
	})
	if unfinished != nil {
		return store.Webhook{}, unfinished, nil
	}
	if err != nil {
		return w, nil, err
	}
	if cancel != nil {
		s.cancelAfter(ctx, *cancel, s.cancelWait)
	}
	return w, nil, nil
}

// recordCancel records c in tx, the change's transaction: it covers the deliveries stored up to
// then. Reads show them as cancelled while it is under way (deletions), and the next Open goes
// on with it if Close stopped it.
func (s *Store) recordCancel(ctx context.Context, tx *sql.Tx, c *cancellation) error {
	var err error
	if c.upTo, err = s.lastDelivery(ctx, tx); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO cancellations (webhook_id, account_id, up_to, at, reason) VALUES (?, ?, ?, ?, ?)`,
		c.w.ID, c.w.AccountID, c.upTo, ms(c.at), c.reason)
	if err != nil {
		return fmt.Errorf("record the cancelling of webhook %d's deliveries: %w", c.w.ID, err)
	}
	return nil
}

// recorded reads the cancellation recorded for w's deliveries, nil when there is none.
func recorded(ctx context.Context, tx *sql.Tx, w store.Webhook) (*cancellation, error) {
	c, err := scanCancellation(tx.QueryRowContext(ctx, `SELECT `+cancellationColumns+` FROM cancellations WHERE webhook_id = ?`, w.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the cancelling of webhook %d's deliveries: %w", w.ID, err)
	}
	c.w = w
	return &c, nil
}

// cancellationColumns are the columns of a recorded cancellation that scanCancellation reads.
const cancellationColumns = `webhook_id, account_id, up_to, at, reason`

// scanCancellation reads a recorded cancellation; its webhook is only its ID and AccountID.
func scanCancellation(row interface{ Scan(...any) error }) (cancellation, error) {
	var c cancellation
	var at int64
	if err := row.Scan(&c.w.ID, &c.w.AccountID, &c.upTo, &at, &c.reason); err != nil {
		return c, err
	}
	c.at, c.deleted = fromMs(at), c.reason == deletedReason
	return c, nil
}

// forget drops webhook's cancelling from those reads show as under way, once enabling the
// webhook again has finished it (its goroutine, if any, finds its record gone and stops).
func (s *Store) forget(webhook int64) {
	s.deleting.Lock()
	defer s.deleting.Unlock()
	delete(s.deleting.m, webhook)
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

// cancellation is the pending deliveries of a webhook just deleted or disabled, to cancel: those
// with ids up to upTo, every one it had when that was committed. Publishes after it store
// none for the webhook, or cancelled ones.
type cancellation struct {
	// w is the webhook as the change left it (disabled), or only its ID and AccountID when
	// deleted, or when Open resumes the cancelling.
	w       store.Webhook
	deleted bool
	upTo    int64
	reason  string
	at      time.Time
}

// A cancellation is written a step at a time: a step covers the delivery ids of cancelWindow
// buckets (1,024 ids each), and a write takes steps until it has changed cancelChunk deliveries
// or fan-outs, or has run for cancelSpell (steps that find little: a webhook with few
// deliveries among many). A webhook with a backlog of a million deliveries is cancelled in a
// few hundred writes, between which publishes and outcomes are written; in one write it held
// them for 9.7 s.
const (
	cancelWindow = 4
	cancelChunk  = 2048
	cancelSpell  = 5 * time.Millisecond
)

// cancelRows cancels the pending deliveries of webhook ?5 with ids in [?6, ?7], in buckets ?3
// down to ?4, at ?1 for reason ?2.
var cancelRows = `UPDATE deliveries SET status = 'cancelled', completed_at = ?, next_attempt_at = NULL, lease_owner = NULL,
	last_error = ? WHERE status = 'pending' AND id IN (` + bucketsDown("?", "?") + `SELECT d.id FROM b` + ofWebhook + `
	AND d.id BETWEEN ? AND ?)`

// cancelAfter runs c once the change that called for it is committed, after telling OnStop's
// function: it cancels for up to wait, then leaves the rest to a goroutine of its own
// (cancelBehind). A failure is logged, not returned: the change stands, its record stays, and
// the engine cancels what is left as it claims it.
func (s *Store) cancelAfter(ctx context.Context, c cancellation, wait time.Duration) {
	if s.stopped != nil {
		s.stopped(c.w, c.deleted)
	}
	run, err := s.startCancel(ctx, c)
	if err == nil {
		err = run.steps(ctx, s, time.Now().Add(wait))
	}
	switch {
	case err != nil:
		s.cancelFailed(c, err)
	case !run.done():
		s.cancelBehind(ctx, run)
	}
}

// cancelFailed logs that c's cancelling stopped on err.
func (s *Store) cancelFailed(c cancellation, err error) {
	s.log.Error("cancel the pending deliveries of a deleted or disabled webhook; the engine cancels the rest as it claims them, and the store goes on with them when it opens next",
		"webhook", c.w.ID, "reason", c.reason, "err", err)
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

// leftToClaims logs that Close stopped c's cancelling.
func (s *Store) leftToClaims(c cancellation) {
	s.log.Info("store closing: the rest of a deleted or disabled webhook's pending deliveries is cancelled when the store opens next (or by the engine as it claims them)",
		"webhook", c.w.ID, "reason", c.reason)
}

// cancelRun is a cancellation under way: its deliveries are cancelled, those still in
// fan-outs included (their events' deliveries are written as rows first), lowest ids first,
// from bucket b to bucket last, a chunk per write. Its record in cancellations is dropped in the
// write that cancels the last of them (record: not yet dropped).
type cancelRun struct {
	c       cancellation
	b, last int64
	record  bool
}

// startCancel finds where c's deliveries begin.
func (s *Store) startCancel(ctx context.Context, c cancellation) (*cancelRun, error) {
	var lo int64
	err := s.rdb.QueryRowContext(context.WithoutCancel(ctx), `SELECT min(coalesce((SELECT min(id) FROM deliveries), ?1),
		coalesce((SELECT min(first_delivery) FROM fanouts), ?1))`, c.upTo+1).Scan(&lo)
	if err != nil {
		return nil, fmt.Errorf("cancel deliveries of webhook %d: %w", c.w.ID, err)
	}
	return &cancelRun{c: c, b: lo >> 10, last: c.upTo >> 10, record: true}, nil
}

// done reports whether every delivery of the run is cancelled, and its record dropped.
func (r *cancelRun) done() bool { return r.b > r.last && !r.record }

// steps writes until the run is done, or until the first write that ends after deadline (zero:
// none). It goes on when ctx ends: the webhook is already deleted or disabled.
func (r *cancelRun) steps(ctx context.Context, s *Store, deadline time.Time) error {
	ctx = context.WithoutCancel(ctx)
	c := r.c
	for !r.done() && (deadline.IsZero() || time.Now().Before(deadline)) {
		err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
			// Gone when enabling the webhook again finished it, or when a delete took it
			// over: nothing is left to this run.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cancellations WHERE webhook_id = ? AND up_to = ? AND at = ?`,
				c.w.ID, c.upTo, ms(c.at)).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				r.b, r.record = r.last+1, false
				return nil
			}
			var changed int64
			for start := time.Now(); changed < cancelChunk && r.b <= r.last && time.Since(start) < cancelSpell; {
				m, err := r.step(ctx, tx)
				if err != nil {
					return err
				}
				changed += m
			}
			if r.b > r.last {
				if _, err := tx.ExecContext(ctx, `DELETE FROM cancellations WHERE webhook_id = ?`, c.w.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cancel deliveries of webhook %d: %w", c.w.ID, err)
		}
		if r.b > r.last {
			r.record = false
		}
	}
	return nil
}

// step cancels, in tx, the run's deliveries in its next cancelWindow buckets, and reports how
// many deliveries and fan-outs it changed.
func (r *cancelRun) step(ctx context.Context, tx *sql.Tx) (int64, error) {
	c := r.c
	from, to := r.b<<10, min((r.b+cancelWindow)<<10-1, c.upTo)
	// A fan-out's deliveries may reach past to: the next step's rows.
	n, err := materialize(ctx, tx, fanoutsToWebhook, c.w.AccountID, from-1, to, c.w.ID)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, cancelRows, ms(c.at), c.reason, to>>10, r.b, c.w.ID, from, to)
	if err != nil {
		return 0, err
	}
	m, _ := res.RowsAffected()
	r.b += cancelWindow
	return n + m, nil
}

// cancelWait is how long DeleteWebhook, and UpdateWebhook when it disables, cancel the webhook's
// pending deliveries before they return (Store.cancelWait, which tests change). A backlog not
// cancelled by then goes on being cancelled after the return, in the background, while reads
// show those deliveries as cancelled already (and the engine, told before any of it, sends none
// of them): 500,000 of them in fan-outs took 12 – 13 s on the tenth session's machine, 6.7 s on
// the twelfth's (BENCHMARKS.md).
const cancelWait = time.Second

// deletions returns the cancellations under way after their deletes or disables, by webhook id
// (nil when none). A read takes them before it reads the deliveries: one that was under way then and
// has finished since has committed everything the read may have missed.
func (s *Store) deletions() map[int64]cancellation {
	s.deleting.Lock()
	defer s.deleting.Unlock()
	if len(s.deleting.m) == 0 {
		return nil
	}
	return maps.Clone(s.deleting.m)
}

// asDeleted shows d as its cancellation will leave it, if d is among the deliveries that
// deleting (from deletions) is cancelling.
func asDeleted(d store.Delivery, deleting map[int64]cancellation) store.Delivery {
	if d.Status != store.StatusPending {
		return d
	}
	if c, ok := deleting[d.WebhookID]; ok && d.ID <= c.upTo {
		d.Status, d.LastError, d.CompletedAt, d.NextAttemptAt = store.StatusCancelled, c.reason, c.at, time.Time{}
	}
	return d
}

// resume goes on, in the background, with the cancellations of deleted or disabled webhooks
// that Close stopped: their records are still in cancellations.
func (s *Store) resume(ctx context.Context) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+cancellationColumns+` FROM cancellations ORDER BY webhook_id`)
	if err != nil {
		return fmt.Errorf("read cancellations under way: %w", err)
	}
	var left []cancellation
	for rows.Next() {
		c, err := scanCancellation(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read cancellations under way: %w", err)
		}
		left = append(left, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("read cancellations under way: %w", err)
	}
	for _, c := range left {
		run, err := s.startCancel(ctx, c)
		if err != nil {
			return err
		}
		s.log.Info("cancelling the rest of a deleted or disabled webhook's pending deliveries, stopped by the last Close",
			"webhook", c.w.ID, "reason", c.reason)
		s.cancelBehind(ctx, run)
	}
	return nil
}

// testHookCancelBehind, when set, is called by cancelBehind's goroutine before its first write
// (tests hold it there; a test that sets it must not run in parallel with others).
var testHookCancelBehind func()

// cancelBehind finishes run in a goroutine of its own, a write at a time, while reads show its
// deliveries as cancelled (deletions). Close stops it between two writes, leaving the record
// for the next Open to resume from; what it leaves pending until then, the engine cancels as it
// claims it (its webhook is gone or disabled).
func (s *Store) cancelBehind(ctx context.Context, run *cancelRun) {
	c := run.c
	s.deleting.Lock()
	if s.closing() {
		s.deleting.Unlock()
		s.leftToClaims(c)
		return
	}
	if s.deleting.m == nil {
		s.deleting.m = map[int64]cancellation{}
	}
	s.deleting.m[c.w.ID] = c
	s.deletingWG.Add(1)
	s.deleting.Unlock()
	ctx = context.WithoutCancel(ctx)
	hook := testHookCancelBehind
	go func() {
		defer s.deletingWG.Done()
		if hook != nil {
			hook()
		}
		defer func() {
			s.deleting.Lock()
			// Unless enabling the webhook again ended it, and a new disable took its place.
			if cur, ok := s.deleting.m[c.w.ID]; ok && cur.upTo == c.upTo && cur.at.Equal(c.at) {
				delete(s.deleting.m, c.w.ID)
			}
			s.deleting.Unlock()
		}()
		for !run.done() {
			if s.closing() {
				s.leftToClaims(c)
				return
			}
			if err := run.steps(ctx, s, time.Now().Add(cancelSpell)); err != nil {
				s.cancelFailed(c, err)
				return
			}
		}
	}()
}

// deletedReason is the last error of the deliveries a delete cancels.
const deletedReason = "webhook deleted"

func (s *Store) DeleteWebhook(ctx context.Context, accountID, id int64, now time.Time) error {
	c := cancellation{w: store.Webhook{ID: id, AccountID: accountID}, deleted: true, reason: deletedReason, at: now}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ? AND account_id = ?`, id, accountID)
		if err != nil {
			return fmt.Errorf("delete webhook %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete webhook %d: %w", id, store.ErrNotFound)
		}
		// A disabled webhook's cancelling under way becomes the delete's.
		return s.recordCancel(ctx, tx, &c)
	})
	if err != nil {
		return err
	}
	s.cancelAfter(ctx, c, s.cancelWait)
	return nil
}
