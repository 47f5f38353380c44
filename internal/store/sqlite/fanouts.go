package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hookrelay/hookrelay/internal/store"
)

// Fan-outs. A publish that leases nothing to an engine (the engine has no room: a backlog, or
// receivers down) stores each event's deliveries as one fanouts row, not as a row per
// delivery: the event's ids first_delivery, first_delivery+1, … go to the webhooks of its
// JSON array in turn, all due when the event was published (migration 00006). That is three
// b-tree entries per event for the single writer instead of the two deliveries' two rows and
// four index entries: in alternating pairs on the ninth session's machine, the publish
// scenario went from 40,000 – 46,000 to 62,000 – 69,000 events/s (BENCHMARKS.md). An event
// with a delivery to a webhook that is not active is written as rows at once, as before.
//
// A claim writes the delivery rows of the fan-outs it takes, leased, as a publish to an
// engine with room would have (claimInOrder). What reads or changes deliveries by their rows
// meets the fan-outs as well:
//   - GetDelivery reads a delivery from its fan-out (fanoutDelivery);
//   - ListDeliveries, when it may list pending deliveries, first has the writer turn the
//     fan-outs with a delivery to its webhook into rows, a chunk per write (settle);
//   - a retry turns the delivery's fan-out into rows, and cancelling a webhook's deliveries
//     those with a delivery to it, a step of ids per write (materialize, cancelPending);
//   - QueueStats counts them where they are.
// Release leaves them alone (they are leased to no one), Complete never meets one (only a
// claimed delivery has an outcome), and Prune keeps their events (their deliveries count in
// the event's live).

// hooksJSON is the JSON array of ts's ids, or "" when ts is empty or one of them is not
// active.
func hooksJSON(ts []target) string {
	ids := make([]int64, len(ts))
	for i, t := range ts {
		if t.status != store.WebhookActive {
			return ""
		}
		ids[i] = t.id
	}
	if len(ids) == 0 {
		return ""
	}
	return joinHooks(ids)
}

// joinHooks writes ids as a JSON array.
func joinHooks(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// parseHooks reads a fan-out's webhooks, as joinHooks writes them.
func parseHooks(s string) ([]int64, error) {
	inner, opened := strings.CutPrefix(s, "[")
	inner, closed := strings.CutSuffix(inner, "]")
	if !opened || !closed || inner == "" {
		return nil, fmt.Errorf("fan-out webhooks %q: not a JSON array of ids", s)
	}
	ids := make([]int64, 0, strings.Count(inner, ",")+1)
	for f := range strings.SplitSeq(inner, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("fan-out webhooks %q: %w", s, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// claimInOrder leases up to p.Limit due deliveries, the earliest due first, from where they
// are: rows (deliveries_due: retries, expired leases, deliveries written as rows) and
// fan-outs (due when their event was published).
func (s *Store) claimInOrder(ctx context.Context, tx *sql.Tx, p store.ClaimParams, jobs *[]store.Job) error {
	now := ms(p.Now)
	for room := p.Limit; room > 0; {
		head, ok, err := scalar(ctx, tx, s.stmts.fanoutHead)
		if err != nil {
			return fmt.Errorf("oldest fan-out: %w", err)
		}
		if !ok || head > now {
			return s.claimRows(ctx, tx, p, now, room, jobs)
		}
		due, dueOK, err := scalar(ctx, tx, s.stmts.dueHead, now)
		if err != nil {
			return fmt.Errorf("earliest due delivery: %w", err)
		}
		before := len(*jobs)
		if dueOK && due <= head {
			// Rows due no later than the oldest fan-out.
			err = s.claimRows(ctx, tx, p, head, room, jobs)
		} else {
			// Fan-outs published before the next row is due.
			bound := now
			if dueOK {
				bound = due - 1
			}
			err = s.claimFanouts(ctx, tx, p, bound, room, jobs)
		}
		if err != nil {
			return err
		}
		took := len(*jobs) - before
		if took == 0 {
			return nil
		}
		room -= took
	}
	return nil
}

// scalar reads the one integer stmt returns, ok false when it returns no row or NULL.
func scalar(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, args ...any) (v int64, ok bool, err error) {
	var n sql.NullInt64
	err = tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return n.Int64, n.Valid, err
}

// claimRows leases up to limit delivery rows due by until.
func (s *Store) claimRows(ctx context.Context, tx *sql.Tx, p store.ClaimParams, until int64, limit int, jobs *[]store.Job) error {
	rows, err := tx.StmtContext(ctx, s.stmts.claim).QueryContext(ctx, ms(p.LeaseUntil), p.Owner, until, limit)
	if err != nil {
		return err
	}
	for rows.Next() {
		var j store.Job
		var created int64
		if err := rows.Scan(&j.DeliveryID, &j.AccountID, &j.WebhookID, &j.EventID, &j.Event, &j.Attempts, &created); err != nil {
			rows.Close()
			return err
		}
		j.CreatedAt = fromMs(created)
		*jobs = append(*jobs, j)
	}
	return errors.Join(rows.Err(), rows.Close())
}

// claimFanouts takes up to limit deliveries of the oldest fan-outs published by until: it
// writes their rows, leased to p.Owner, and drops the fan-outs (or, for one taken in part,
// keeps the rest of it).
func (s *Store) claimFanouts(ctx context.Context, tx *sql.Tx, p store.ClaimParams, until int64, limit int, jobs *[]store.Job) error {
	type part struct {
		first, next int64 // its first id, and the first not taken
		rest        []int64
	}
	var (
		args  []any
		drop  int64 = -1 // the fan-outs below it were taken whole
		taken *part      // one taken in part
	)
	rows, err := tx.StmtContext(ctx, s.stmts.takeFanouts).QueryContext(ctx, limit)
	if err != nil {
		return fmt.Errorf("read fan-outs: %w", err)
	}
	for rows.Next() && limit > 0 {
		var first, account, created int64
		var eventID, event, hooks string
		if err := rows.Scan(&first, &account, &eventID, &event, &created, &hooks); err != nil {
			rows.Close()
			return fmt.Errorf("read fan-outs: %w", err)
		}
		if created > until {
			break
		}
		ids, err := parseHooks(hooks)
		if err != nil {
			rows.Close()
			return err
		}
		n := min(len(ids), limit)
		for i, webhookID := range ids[:n] {
			id := first + int64(i)
			args = append(args, id, account, webhookID, eventID, event, created)
			*jobs = append(*jobs, store.Job{DeliveryID: id, AccountID: account, WebhookID: webhookID, EventID: eventID,
				Event: event, CreatedAt: fromMs(created)})
		}
		limit -= n
		if n < len(ids) {
			taken = &part{first: first, next: first + int64(n), rest: ids[n:]}
			break
		}
		drop = first + 1
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("read fan-outs: %w", err)
	}
	if err := s.stmts.insertLeased.run(ctx, tx, []any{p.Owner, ms(p.LeaseUntil)}, args); err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	if drop >= 0 {
		if _, err := tx.StmtContext(ctx, s.stmts.dropFanouts).ExecContext(ctx, drop); err != nil {
			return fmt.Errorf("drop fan-outs: %w", err)
		}
	}
	if taken != nil {
		// The rest keeps its ids: the first of them becomes the fan-out's first.
		_, err := tx.StmtContext(ctx, s.stmts.trimFanout).ExecContext(ctx, taken.next, len(taken.rest), joinHooks(taken.rest), taken.first)
		if err != nil {
			return fmt.Errorf("trim fan-out: %w", err)
		}
	}
	return nil
}

// Which fan-outs to write as rows (materialize): as WHERE conditions on fanouts, with their
// parameters.
const (
	// Those of account ?1 with their first delivery in (?2, ?3].
	fanoutsOfAccount = `account_id = ?1 AND first_delivery > ?2 AND first_delivery <= ?3`
	// The one holding delivery ?1.
	fanoutOfDelivery = `first_delivery = (SELECT max(first_delivery) FROM fanouts WHERE first_delivery <= ?1)
		AND first_delivery + deliveries > ?1`
	// Those of fanoutsOfAccount with a delivery to webhook ?4 (instr first: a search of the
	// text passes over most others without parsing their JSON).
	fanoutsToWebhook = fanoutsOfAccount + ` AND instr(webhooks, ?4) > 0
		AND EXISTS (SELECT 1 FROM json_each(webhooks) WHERE value = ?4)`
)

// materialize writes the rows of the deliveries of the fan-outs where selects, pending and due
// when their event was published (as a publish without an engine's lease would have), and
// drops those fan-outs. It says how many fan-outs it wrote.
func materialize(ctx context.Context, tx *sql.Tx, where string, args ...any) (int64, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, account_id, webhook_id, event_id, event, created_at, next_attempt_at, status)
		SELECT f.first_delivery + j.key, f.account_id, j.value, f.event_id, f.event, f.created_at, f.created_at, '`+store.StatusPending+`'
		FROM (SELECT * FROM fanouts WHERE `+where+`) f, json_each(f.webhooks) j ORDER BY f.first_delivery, j.key`, args...)
	if err != nil {
		return 0, fmt.Errorf("write fan-outs' deliveries: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM fanouts WHERE first_delivery IN (SELECT first_delivery FROM fanouts WHERE `+where+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("drop fan-outs: %w", err)
	}
	return res.RowsAffected()
}

// settleChunk bounds the fan-outs one write of settle turns into rows, so that publishes
// and outcomes wait for a few milliseconds of it at a time, not for a whole backlog.
const settleChunk = 2048

// settle makes every delivery to webhook (of account) stored before it was called a row, for
// a listing of the webhook's deliveries: it has the writer materialize the fan-outs holding
// one, oldest first, a chunk per write. Fan-outs without a delivery to it are left alone, so a
// listing never waits for other webhooks' backlogs, its account's or another's (finding the
// webhook's among them is a scan of the account's fan-outs). A fan-out stored after it began
// is of a publish answered after the read began.
func (s *Store) settle(ctx context.Context, accountID, webhookID int64) error {
	var last sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT max(first_delivery) FROM fanouts WHERE `+fanoutsToWebhook,
		accountID, 0, int64(math.MaxInt64), webhookID).Scan(&last)
	if err != nil {
		return fmt.Errorf("look for fan-outs: %w", err)
	}
	var after int64 // the chunks so far reached this first delivery
	for done := !last.Valid; !done; {
		err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
			var upTo sql.NullInt64
			err := tx.QueryRowContext(ctx, `SELECT max(first_delivery) FROM (SELECT first_delivery FROM fanouts
				WHERE `+fanoutsToWebhook+` ORDER BY first_delivery LIMIT ?5)`, accountID, after, last.Int64, webhookID, settleChunk).Scan(&upTo)
			if err != nil || !upTo.Valid {
				done = true
				return err
			}
			if _, err := materialize(ctx, tx, fanoutsToWebhook, accountID, after, upTo.Int64, webhookID); err != nil {
				return err
			}
			after, done = upTo.Int64, upTo.Int64 >= last.Int64
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// fanoutDelivery reads delivery id of account from the fan-out holding it, if one does.
func (s *Store) fanoutDelivery(ctx context.Context, accountID, id int64) (store.Delivery, bool, error) {
	var first, account, created int64
	var eventID, event, hooks string
	err := s.rdb.QueryRowContext(ctx, `SELECT first_delivery, account_id, event_id, event, created_at, webhooks FROM fanouts
		WHERE `+fanoutOfDelivery, id).Scan(&first, &account, &eventID, &event, &created, &hooks)
	if errors.Is(err, sql.ErrNoRows) || err == nil && account != accountID {
		return store.Delivery{}, false, nil
	}
	if err != nil {
		return store.Delivery{}, false, err
	}
	ids, err := parseHooks(hooks)
	if err != nil {
		return store.Delivery{}, false, err
	}
	if id-first >= int64(len(ids)) {
		return store.Delivery{}, false, fmt.Errorf("fan-out %d: %d webhooks for delivery %d", first, len(ids), id)
	}
	at := fromMs(created)
	return store.Delivery{ID: id, AccountID: account, WebhookID: ids[id-first], EventID: eventID, Event: event,
		Status: store.StatusPending, NextAttemptAt: at, CreatedAt: at}, true, nil
}
