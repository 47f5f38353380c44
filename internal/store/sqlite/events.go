package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hookrelay/hookrelay/internal/store"
)

type fanoutKey struct {
	account int64
	event   string
}

type target struct {
	id      int64
	status  string
	version int64
}

// targets are the webhooks an event of one account and type goes to.
type targets struct {
	list []target
	// hooks is list's ids as a JSON array, for a fan-out row (fanouts.go); empty when list is,
	// or when one of them is not active: its delivery is stored cancelled, so that event's
	// deliveries are written as rows at once.
	hooks string
}

func (s *Store) Publish(ctx context.Context, p store.PublishParams) ([]store.Published, error) {
	results := make([]store.Published, len(p.Events))
	err := s.writeKeeping(ctx, func(tx *sql.Tx) error {
		st := &s.stmts
		accountStmt := tx.StmtContext(ctx, st.accountExists)
		fanoutStmt := tx.StmtContext(ctx, st.fanout)
		idemStmt := tx.StmtContext(ctx, st.idempotent)
		forgetStmt := tx.StmtContext(ctx, st.forgetKey)
		c := &s.cache
		if _, err := s.lastDelivery(ctx, tx); err != nil {
			return err
		}
		// The argument lists are the writer's own, kept between publishes (emptied after
		// use, so they hold no event past its publish): growing them afresh each time was 3%
		// of the writer's time.
		a := &s.publishArgs
		defer a.reset()
		eventArgs, pending, cancelled, fanouts := a.events[:0], a.pending[:0], a.cancelled[:0], a.fanouts[:0]
		var jobs []store.Job // every event's jobs, each event's a slice of it
		if p.Owner != "" {
			jobs = make([]store.Job, 0, len(p.Events)*2)
		}
		for i, e := range p.Events {
			results[i] = store.Published{EventID: e.ID, Type: e.Type}
			exists, seen := c.accounts[e.AccountID]
			if !seen {
				var one int
				err := accountStmt.QueryRowContext(ctx, e.AccountID).Scan(&one)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("get account %d: %w", e.AccountID, err)
				}
				exists = err == nil
				c.accounts[e.AccountID] = exists
			}
			if !exists {
				results[i].Err = fmt.Errorf("account %d: %w", e.AccountID, store.ErrNotFound)
				continue
			}
			var key any
			if e.IdempotencyKey != "" {
				key = e.IdempotencyKey
				if dup, ok := duplicateIn(p.Events[:i], results[:i], e); ok {
					results[i] = dup
					continue
				}
				var id, typ string
				var n int
				var created int64
				err := idemStmt.QueryRowContext(ctx, e.AccountID, e.IdempotencyKey).Scan(&id, &typ, &n, &created)
				switch {
				case errors.Is(err, sql.ErrNoRows):
				case err != nil:
					return fmt.Errorf("look up idempotency key: %w", err)
				case created > ms(p.IdempotencySince):
					results[i] = store.Published{EventID: id, Type: typ, Deliveries: n, Duplicate: true}
					continue
				default:
					// The earlier event is outside the window: its key no longer binds.
					if _, err := forgetStmt.ExecContext(ctx, id); err != nil {
						return fmt.Errorf("forget idempotency key: %w", err)
					}
				}
			}
			firstJob := len(jobs)
			fk := fanoutKey{e.AccountID, e.Type}
			tg, ok := c.targets[fk]
			if !ok {
				var err error
				if tg, err = fanout(ctx, fanoutStmt, fk); err != nil {
					return err
				}
				c.targets[fk] = tg
			}
			ts := tg.list
			now := ms(e.CreatedAt)
			eventArgs = append(eventArgs, e.ID, e.AccountID, e.Type, e.Body, key, len(ts), len(ts), now)
			results[i].Deliveries = len(ts)
			if p.Owner == "" && tg.hooks != "" {
				// Not leased: one fan-out row until a claim takes its deliveries.
				fanouts = append(fanouts, c.nextDelivery, len(ts), e.AccountID, e.ID, e.Type, now, tg.hooks)
				c.nextDelivery += int64(len(ts))
				continue
			}
			for _, t := range ts {
				id := c.nextDelivery
				c.nextDelivery++
				switch {
				case t.status != store.WebhookActive:
					cancelled = append(cancelled, id, e.AccountID, t.id, e.ID, e.Type, now, now)
				case p.Owner != "":
					pending = append(pending, id, e.AccountID, t.id, e.ID, e.Type, now)
					jobs = append(jobs, store.Job{DeliveryID: id, AccountID: e.AccountID, WebhookID: t.id,
						WebhookVersion: t.version, EventID: e.ID, Event: e.Type, CreatedAt: fromMs(now)})
				default:
					pending = append(pending, id, e.AccountID, t.id, e.ID, e.Type, now, now)
				}
			}
			if len(jobs) > firstJob {
				// Full slice expression: an append to one event's jobs never reaches the next's.
				results[i].Jobs = jobs[firstJob:len(jobs):len(jobs)]
			}
		}
		a.events, a.pending, a.cancelled, a.fanouts = eventArgs, pending, cancelled, fanouts
		if err := st.insertEvents.run(ctx, tx, nil, eventArgs); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		if err := st.insertFanouts.run(ctx, tx, nil, fanouts); err != nil {
			return fmt.Errorf("insert fan-outs: %w", err)
		}
		insert, shared := &st.insertPending, []any(nil)
		if p.Owner != "" {
			insert, shared = &st.insertLeased, []any{p.Owner, ms(p.LeaseUntil)}
		}
		if err := insert.run(ctx, tx, shared, pending); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if err := st.insertCancelled.run(ctx, tx, nil, cancelled); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// publishArgs are Publish's argument lists, kept by the writer goroutine between publishes.
type publishArgs struct {
	events, pending, cancelled, fanouts []any
}

// maxKeptArgs bounds what publishArgs keeps between publishes (a list that grew past it, for
// an unusually large publish, is let go).
const maxKeptArgs = 1 << 16

// reset empties the lists, so that they hold no event's values past its publish.
func (a *publishArgs) reset() {
	for _, l := range []*[]any{&a.events, &a.pending, &a.cancelled, &a.fanouts} {
		clear(*l)
		*l = (*l)[:0]
		if cap(*l) > maxKeptArgs {
			*l = nil
		}
	}
}

// duplicateIn finds an earlier event of the same batch with e's account and idempotency key.
func duplicateIn(earlier []store.NewEvent, results []store.Published, e store.NewEvent) (store.Published, bool) {
	for i, x := range earlier {
		if x.AccountID == e.AccountID && x.IdempotencyKey == e.IdempotencyKey && results[i].Err == nil {
			r := results[i]
			return store.Published{EventID: r.EventID, Type: r.Type, Deliveries: r.Deliveries, Duplicate: true}, true
		}
	}
	return store.Published{}, false
}

func fanout(ctx context.Context, stmt *sql.Stmt, k fanoutKey) (targets, error) {
	rows, err := stmt.QueryContext(ctx, k.account, k.event)
	if err != nil {
		return targets{}, fmt.Errorf("find webhooks: %w", err)
	}
	defer rows.Close()
	var ts targets
	for rows.Next() {
		var t target
		if err := rows.Scan(&t.id, &t.status, &t.version); err != nil {
			return targets{}, fmt.Errorf("find webhooks: %w", err)
		}
		ts.list = append(ts.list, t)
	}
	if err := rows.Err(); err != nil {
		return targets{}, fmt.Errorf("find webhooks: %w", err)
	}
	ts.hooks = hooksJSON(ts.list)
	return ts, nil
}

func (s *Store) EventBodies(ctx context.Context, ids []string) (map[string][]byte, error) {
	bodies := make(map[string][]byte, len(ids))
	if len(ids) == 0 {
		return bodies, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("event bodies: %w", err)
	}
	rows, err := s.reads.eventBodies.QueryContext(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("event bodies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("event bodies: %w", err)
		}
		bodies[id] = body
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("event bodies: %w", err)
	}
	return bodies, nil
}

// queryIn runs the query that in makes of a list of placeholders for ids, at most 500 ids at a
// time, and calls scan for each row.
func queryIn[T any](ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, ids []T, in func(marks string) string, scan func(*sql.Rows) error) error {
	const chunk = 500
	args := make([]any, 0, min(len(ids), chunk))
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args = args[:0]
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		rows, err := q.QueryContext(ctx, in(placeholders(n)), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	}
	return nil
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
