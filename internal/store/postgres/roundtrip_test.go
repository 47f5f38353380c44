package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
)

// roundTrips counts what a connection sends: each query and each batch is one round trip once
// its statements are prepared (pgx prepares a statement on its first use on a connection, one
// more round trip then). The chunks of a cancelling behind a change (cancelBehind) run in a
// goroutine of their own and are not counted.
type roundTrips struct {
	queries, batches atomic.Int64
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	if q.SQL != cancelChunkSQL {
		r.queries.Add(1)
	}
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.batches.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// count returns the queries and batches sent by fn.
func (r *roundTrips) count(fn func()) (queries, batches int64) {
	q, b := r.queries.Load(), r.batches.Load()
	fn()
	return r.queries.Load() - q, r.batches.Load() - b
}

// tracedStore opens a store of one connection (so that its statements, once prepared, stay
// prepared) in a fresh schema, with a tracer counting its round trips.
func tracedStore(t *testing.T) (*Store, *roundTrips) {
	t.Helper()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	ctx := context.Background()
	cfg, err := poolConfig(u, Options{Schema: schema, MaxConns: 1, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, cfg.ConnConfig, schema, nil); err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(pool, Options{})
	t.Cleanup(func() { s.Close() })
	return s, rt
}

// UpdateHealth costs two round trips however many webhooks it updates, alerts it queues and
// webhooks it disables: one to begin and lock, one to write and commit. The cancelling of the
// deliveries of those it disables runs behind it.
func TestUpdateHealthRoundTrips(t *testing.T) {
	s, rt := tracedStore(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := s.CreateAccount(ctx, store.Account{Email: "rt@acme.test", CreatedAt: now}, store.NewAPIKey{Prefix: "p", Hash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 6 {
		w, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com", Secret: "s", CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	if _, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: "e1", AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	failing := func(w *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		w.ConsecutiveFailures++
		w.LastDeliveryAt = w.LastDeliveryAt.Add(time.Second)
		st.Pending++
		return []store.Alert{{AccountID: w.AccountID, WebhookID: w.ID, Kind: store.AlertFailing, Recipient: "ops@acme.test",
			URL: w.URL, Event: w.Event, Events: []string{w.Event}, State: store.AlertPending, NextTryAt: now, CreatedAt: now}}, nil
	}
	disable := func(w *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		alerts, _ := failing(w, st)
		w.Status, w.DisabledReason, w.UpdatedAt = store.WebhookDisabled, "gone", now
		return alerts, nil
	}
	// Warm up: prepare every statement on the connection.
	for _, update := range []func(*store.Webhook, *store.AlertState) ([]store.Alert, error){failing, disable} {
		if _, err := s.UpdateHealth(ctx, ids[:1], update); err != nil {
			t.Fatal(err)
		}
	}

	// Two batches: the locking read and the writes; a status change costs one more, the
	// announcement to the other nodes.
	tests := []struct {
		name    string
		ids     []int64
		update  func(*store.Webhook, *store.AlertState) ([]store.Alert, error)
		batches int64
	}{
		{"one webhook", ids[1:2], failing, 2},
		{"four webhooks", ids[1:5], failing, 2},
		{"disabling two", ids[4:6], disable, 3},
		{"nothing to write", ids[1:3], func(*store.Webhook, *store.AlertState) ([]store.Alert, error) { return nil, nil }, 2},
		{"missing webhooks", []int64{99998, 99999}, failing, 2},
	}
	for _, tt := range tests {
		queries, batches := rt.count(func() { _, err = s.UpdateHealth(ctx, tt.ids, tt.update) })
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if queries != 0 || batches != tt.batches {
			t.Errorf("%s: %d queries and %d batches, want %d batches", tt.name, queries, batches, tt.batches)
		}
	}
	// An update that fails costs the rollback besides, and leaves the connection fit for reuse.
	conns := s.pool.Stat().NewConnsCount()
	refuse := errors.New("refused")
	queries, batches := rt.count(func() {
		_, err = s.UpdateHealth(ctx, ids[1:3], func(*store.Webhook, *store.AlertState) ([]store.Alert, error) { return nil, refuse })
	})
	if !errors.Is(err, refuse) || queries != 1 || batches != 1 {
		t.Errorf("failed update: err %v, %d queries and %d batches, want the error, 1 query (rollback) and 1 batch", err, queries, batches)
	}
	if _, err := s.WebhookByID(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if got := s.pool.Stat().NewConnsCount(); got != conns {
		t.Errorf("a failed update cost the connection (%d new ones)", got-conns)
	}
}
