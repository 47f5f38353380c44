package sqlite

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// healthStore opens a store in a temporary directory, closed when the test ends, with one
// account.
func healthStore(t *testing.T) (*Store, store.Account, time.Time) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := s.CreateAccount(ctx, store.Account{Email: "health@acme.test", Name: "Health", CreatedAt: now},
		store.NewAPIKey{Prefix: "hr_health", Hash: []byte("health")})
	if err != nil {
		t.Fatal(err)
	}
	return s, a, now
}

// TestHealthCache: UpdateHealth reads a webhook from the store once and from the writer's cache
// afterwards; each time, what update is given must equal what reading the store gives.
func TestHealthCache(t *testing.T) {
	ctx := context.Background()
	s, a, now := healthStore(t)
	w, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com/hook",
		Secret: "s", SkipErrorCodes: []string{"404"}, RetryOnError: true, Status: store.WebhookActive, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	read := func() (store.Webhook, store.AlertState) {
		t.Helper()
		w, st, err := scanWebhookState(s.rdb.QueryRowContext(ctx, `SELECT `+webhookColumns+`, alert_state FROM webhooks WHERE id = ?`, w.ID), true)
		if err != nil {
			t.Fatal(err)
		}
		return w, st
	}
	// Each step changes what the health statements write, with times finer than a millisecond
	// and strings JSON cannot keep as they are.
	at := now.Add(1234567 * time.Nanosecond).In(time.FixedZone("X", 3600))
	steps := []func(*store.Webhook, *store.AlertState){
		func(w *store.Webhook, st *store.AlertState) {
			w.LastDeliveryAt, w.ConsecutiveFailures, w.FailingSince, w.FailingDeliveries = at, 1, at, 1
			st.Pending, st.PendingFirstAt, st.PendingLastAt, st.PendingLastStatus = 1, at, at, 500
			st.PendingLastError, st.PendingEvents, st.LastAlertAt = "HTTP 500 \xff", []string{"e1"}, at
		},
		func(w *store.Webhook, st *store.AlertState) {
			w.LastDeliveryAt, w.LastSuccessAt, w.ConsecutiveFailures, w.FailingSince = at.Add(time.Second), at.Add(time.Second), 0, time.Time{}
			st.Pending, st.PendingEvents = 0, []string{}
		},
		func(w *store.Webhook, st *store.AlertState) {
			w.Status, w.DisabledReason, w.UpdatedAt = store.WebhookDisabled, "failing", at.Add(2*time.Second)
		},
		func(w *store.Webhook, st *store.AlertState) { w.LastDeliveryAt = at.Add(3 * time.Second) },
		// Only the times: written by the narrower statement.
		func(w *store.Webhook, st *store.AlertState) {
			w.LastDeliveryAt, w.LastSuccessAt = at.Add(4*time.Second), at.Add(5*time.Second)
		},
	}
	for i, step := range append(steps, func(*store.Webhook, *store.AlertState) {}) {
		wantW, wantSt := read()
		_, err := s.UpdateHealth(ctx, []int64{w.ID}, func(gotW *store.Webhook, gotSt *store.AlertState) ([]store.Alert, error) {
			if !reflect.DeepEqual(*gotW, wantW) || !reflect.DeepEqual(*gotSt, wantSt) {
				t.Errorf("step %d: update given\n%+v\n%+v\nthe store holds\n%+v\n%+v", i, *gotW, *gotSt, wantW, wantSt)
			}
			step(gotW, gotSt)
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i >= 1 && len(s.cache.health) == 0 {
			t.Fatalf("step %d: the cache holds nothing", i)
		}
	}
}

// TestHealthCacheBounded: past maxHealthCached webhooks the cache starts over, and flushes read
// what it no longer holds.
func TestHealthCacheBounded(t *testing.T) {
	n := maxHealthCached
	t.Cleanup(func() { maxHealthCached = n }) // after the store's close, registered later
	maxHealthCached = 2
	ctx := context.Background()
	s, a, now := healthStore(t)
	var ids []int64
	for range 5 {
		w, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com/hook",
			Secret: "s", Status: store.WebhookActive, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	for round := range 3 {
		seen := map[int64]int{}
		if _, err := s.UpdateHealth(ctx, ids, func(w *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
			seen[w.ID] = w.ConsecutiveFailures
			w.ConsecutiveFailures++
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if seen[id] != round {
				t.Fatalf("round %d: webhook %d given %d consecutive failures, want %d", round, id, seen[id], round)
			}
		}
		if n := len(s.cache.health); n > maxHealthCached {
			t.Fatalf("round %d: the cache holds %d webhooks, more than %d", round, n, maxHealthCached)
		}
	}
}
