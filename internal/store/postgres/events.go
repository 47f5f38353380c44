package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/internal/store"
)

// publishSQL stores a whole batch of events and their deliveries in one statement: the fan-out,
// the account check, the events and the deliveries are all computed from the arrays inside the
// database, so a batch costs one round trip however many events and webhooks it has.
//
// hooks is locked FOR KEY SHARE: publishers do not block each other, but a webhook deleted
// meanwhile is skipped, and a DeleteWebhook waits until this publish has committed before it
// cancels the webhook's pending deliveries (so none slips past the cancel). Disabling a webhook
// works the same way (lockForDisableSQL): it takes FOR UPDATE, on several webhooks at once in id
// order, so hooks is locked in id order too and the two never wait for each other in a cycle.
//
// Events with an idempotency key whose key is already held are left out by ON CONFLICT DO
// NOTHING, which also waits for a concurrent publisher inserting the same key: the unique index
// makes the key hold across nodes. They are inserted in key order, so two publishers never wait
// for each other's keys in a cycle.
//
// The result has a row per inserted event (kind e: id, deliveries), one per account that does
// not exist (kind m: missing) and, when an owner ($7) is given, one per new pending delivery,
// leased to it until $8 (kind d: the event id, delivery, webhook and its version).
const publishSQL = `WITH e AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::timestamptz[])
		WITH ORDINALITY AS e(id, account_id, type, body, idempotency_key, created_at, n)
), acc AS (
	SELECT id FROM accounts WHERE id IN (SELECT account_id FROM e)
), hooks AS (
	SELECT w.id, w.account_id, w.event, w.status = 'active' AS active, w.version FROM webhooks w
	WHERE (w.account_id, w.event) IN (SELECT account_id, type FROM e)
	ORDER BY w.id
	FOR KEY SHARE
), fan AS (
	SELECT account_id, event, count(*)::int AS n FROM hooks GROUP BY account_id, event
), ev AS (
	INSERT INTO events (id, account_id, type, body, idempotency_key, deliveries, created_at)
	SELECT e.id, e.account_id, e.type, e.body, NULLIF(e.idempotency_key, ''), coalesce(fan.n, 0), e.created_at
	FROM e JOIN acc ON acc.id = e.account_id
	LEFT JOIN fan ON fan.account_id = e.account_id AND fan.event = e.type
	ORDER BY e.account_id, e.idempotency_key
	ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
	RETURNING id, account_id, type, deliveries, created_at
), dl AS (
	INSERT INTO deliveries (account_id, webhook_id, event_id, event, status, last_error, next_attempt_at, lease_owner,
		created_at, completed_at)
	SELECT ev.account_id, h.id, ev.id, ev.type,
		CASE WHEN h.active THEN 'pending' ELSE 'cancelled' END,
		CASE WHEN h.active THEN NULL ELSE 'webhook disabled' END,
		CASE WHEN NOT h.active THEN NULL WHEN $7 <> '' THEN $8::timestamptz ELSE ev.created_at END,
		CASE WHEN h.active THEN NULLIF($7, '') END,
		ev.created_at,
		CASE WHEN h.active THEN NULL ELSE ev.created_at END
	FROM ev JOIN e ON e.id = ev.id
	JOIN hooks h ON h.account_id = ev.account_id AND h.event = ev.type
	ORDER BY e.n, h.id
	RETURNING id, event_id, webhook_id, status
)
SELECT 'e' AS kind, id, deliveries, NULL::bigint AS missing, NULL::bigint AS delivery, NULL::bigint AS webhook, NULL::bigint AS version FROM ev
UNION ALL
SELECT 'm', NULL, 0, m.account_id, NULL, NULL, NULL FROM (SELECT DISTINCT account_id FROM e) m WHERE m.account_id NOT IN (SELECT id FROM acc)
UNION ALL
SELECT 'd', dl.event_id, 0, NULL, dl.id, dl.webhook_id, h.version FROM dl JOIN hooks h ON h.id = dl.webhook_id
WHERE $7 <> '' AND dl.status = 'pending'`

// forgetKeysSQL frees the keys of earlier events that are outside the idempotency window, so
// the events of the batch can take them. It runs in the same transaction as publishSQL, just
// before it; rows are locked in key order, like the inserts.
const forgetKeysSQL = `UPDATE events SET idempotency_key = NULL WHERE id IN (
	SELECT e.id FROM events e
	JOIN unnest($1::bigint[], $2::text[]) AS k(account_id, idempotency_key)
		ON e.account_id = k.account_id AND e.idempotency_key = k.idempotency_key
	WHERE e.created_at <= $3
	ORDER BY e.account_id, e.idempotency_key
	FOR UPDATE OF e)`

// keyHoldersSQL reads the events that hold the given keys.
const keyHoldersSQL = `SELECT e.account_id, e.idempotency_key, e.id, e.type, e.deliveries FROM events e
	JOIN unnest($1::bigint[], $2::text[]) AS k(account_id, idempotency_key)
		ON e.account_id = k.account_id AND e.idempotency_key = k.idempotency_key`

type idemKey struct {
	account int64
	key     string
}

// maxPublishRounds bounds how often an event whose key changed hands under it is tried again.
const maxPublishRounds = 3

// querier is a pool or a transaction.
type querier interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Publish stores the batch in one transaction. Without idempotency keys that is the implicit
// transaction of one statement: one round trip. With keys it is an explicit transaction, so
// that reading the events that hold the keys of duplicates is part of it: a Publish that fails
// has stored nothing, whatever step failed.
func (s *Store) publish(ctx context.Context, p store.PublishParams) ([]store.Published, error) {
	if len(p.Events) == 0 {
		return []store.Published{}, nil
	}
	since := ts(p.IdempotencySince)
	results := make([]store.Published, len(p.Events))
	run := func(q querier) error {
		todo := make([]int, len(p.Events))
		for i, e := range p.Events {
			results[i] = store.Published{EventID: e.ID, Type: e.Type}
			todo[i] = i
		}
		for round := 1; len(todo) > 0; round++ {
			if round > maxPublishRounds {
				// Report these events as not stored rather than fail the whole batch.
				for _, i := range todo {
					e := p.Events[i]
					results[i].Err = fmt.Errorf("publish event %s: idempotency key %q kept changing hands; try again", e.ID, e.IdempotencyKey)
				}
				return nil
			}
			var err error
			if todo, err = publishRound(ctx, q, p, todo, since, results); err != nil {
				return err
			}
		}
		return nil
	}
	keyed := slices.ContainsFunc(p.Events, func(e store.NewEvent) bool { return e.IdempotencyKey != "" })
	err := retry(ctx, func() error {
		if !keyed {
			return run(s.pool)
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return run(tx) })
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// publishRound stores the events at the indices todo (in ascending order) and fills their
// results. It returns the indices to try again: events whose key was held by an event that no
// longer held it by the time it was read (freed meanwhile by another publisher or by Prune).
func publishRound(ctx context.Context, q querier, p store.PublishParams, todo []int, since time.Time, results []store.Published) ([]int, error) {
	events := p.Events
	// The first event of the batch with a key stands for the later ones with the same key.
	first := map[idemKey]int{}
	firstOf := map[int]int{}
	var (
		ids, types, keys []string
		accounts         []int64
		bodies           [][]byte
		created          []time.Time
		keyAccounts      []int64
		keyKeys          []string
		sent             []int
	)
	for _, i := range todo {
		e := events[i]
		if e.IdempotencyKey != "" {
			k := idemKey{e.AccountID, e.IdempotencyKey}
			if f, ok := first[k]; ok {
				firstOf[i] = f
				continue
			}
			first[k] = i
			keyAccounts = append(keyAccounts, e.AccountID)
			keyKeys = append(keyKeys, e.IdempotencyKey)
		}
		ids = append(ids, e.ID)
		accounts = append(accounts, e.AccountID)
		types = append(types, e.Type)
		body := e.Body
		if body == nil {
			body = []byte{}
		}
		bodies = append(bodies, body)
		keys = append(keys, e.IdempotencyKey)
		created = append(created, ts(e.CreatedAt))
		sent = append(sent, i)
	}

	// One batch: freeing expired keys and inserting take one round trip.
	inserted := map[string]int{}
	missing := map[int64]bool{}
	jobs := map[string][]store.Job{}
	b := &pgx.Batch{}
	if len(keyKeys) > 0 {
		b.Queue(forgetKeysSQL, keyAccounts, keyKeys, since)
	}
	b.Queue(publishSQL, ids, accounts, types, bodies, keys, created, p.Owner, ts(p.LeaseUntil))
	br := q.SendBatch(ctx, b)
	defer br.Close()
	if len(keyKeys) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("publish: free expired idempotency keys: %w", err)
		}
	}
	rows, _ := br.Query()
	for rows.Next() {
		var kind string
		var id *string
		var n int
		var account, delivery, webhook, version *int64
		if err := rows.Scan(&kind, &id, &n, &account, &delivery, &webhook, &version); err != nil {
			rows.Close()
			return nil, fmt.Errorf("publish: %w", err)
		}
		switch kind {
		case "e":
			inserted[*id] = n
		case "m":
			missing[*account] = true
		case "d":
			jobs[*id] = append(jobs[*id], store.Job{DeliveryID: *delivery, WebhookID: *webhook, WebhookVersion: *version, EventID: *id})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	// Without a transaction around it, Close reports whether the batch committed.
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}

	var heldAccounts []int64
	var heldKeys []string
	var held []int
	for _, i := range sent {
		e := events[i]
		switch n, ok := inserted[e.ID]; {
		case ok:
			results[i].Deliveries = n
			for _, j := range jobs[e.ID] {
				j.AccountID, j.Event, j.CreatedAt = e.AccountID, e.Type, ts(e.CreatedAt)
				results[i].Jobs = append(results[i].Jobs, j)
			}
		case missing[e.AccountID]:
			results[i].Err = fmt.Errorf("account %d: %w", e.AccountID, store.ErrNotFound)
		case e.IdempotencyKey != "":
			heldAccounts = append(heldAccounts, e.AccountID)
			heldKeys = append(heldKeys, e.IdempotencyKey)
			held = append(held, i)
		default:
			// Only a key or a missing account leaves an event out; anything else is an error.
			return nil, fmt.Errorf("publish: event %s was not stored", e.ID)
		}
	}

	var again []int
	if len(held) > 0 {
		// A statement of its own: it sees the events of concurrent publishers that the insert
		// waited for, which the insert's snapshot did not.
		holders, err := keyHolders(ctx, q, heldAccounts, heldKeys)
		if err != nil {
			return nil, err
		}
		for _, i := range held {
			e := events[i]
			h, ok := holders[idemKey{e.AccountID, e.IdempotencyKey}]
			if !ok {
				again = append(again, i)
				continue
			}
			h.Duplicate = true
			results[i] = h
		}
	}
	for i, f := range firstOf {
		if slices.Contains(again, f) {
			again = append(again, i)
			continue
		}
		r := results[f]
		if r.Err == nil {
			r.Duplicate = true
		}
		r.Jobs = nil // the deliveries are the first event's
		results[i] = r
	}
	slices.Sort(again)
	return again, nil
}

// keyHolders reads the events holding the keys, as the results of duplicates.
func keyHolders(ctx context.Context, q querier, accounts []int64, keys []string) (map[idemKey]store.Published, error) {
	rows, _ := q.Query(ctx, keyHoldersSQL, accounts, keys)
	defer rows.Close()
	holders := map[idemKey]store.Published{}
	for rows.Next() {
		var k idemKey
		var p store.Published
		if err := rows.Scan(&k.account, &k.key, &p.EventID, &p.Type, &p.Deliveries); err != nil {
			return nil, fmt.Errorf("publish: look up idempotency keys: %w", err)
		}
		holders[k] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("publish: look up idempotency keys: %w", err)
	}
	return holders, nil
}

func (s *Store) EventBodies(ctx context.Context, ids []string) (map[string][]byte, error) {
	bodies := make(map[string][]byte, len(ids))
	if len(ids) == 0 {
		return bodies, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT id, body FROM events WHERE id = ANY($1::text[])`, ids)
	defer rows.Close()
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("event bodies: %w", err)
		}
		bodies[id] = body
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("event bodies: %w", err)
	}
	return bodies, nil
}
