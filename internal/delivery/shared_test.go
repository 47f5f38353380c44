package delivery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
)

func TestGrantSize(t *testing.T) {
	for _, c := range []struct{ limit, queued, want int }{
		{4, 10, 4},            // never more than the limit
		{60, 0, 1},            // at least one
		{60, 3, 3},            // a small limit: what is queued
		{600, 1, 9},           // the default limit: a 64th of it
		{600, 50, 50},         // or what is queued, if more
		{1_000_000, 1, 256},   // a large limit: maxGrant
		{1_000_000, 900, 256}, // never more than maxGrant
	} {
		if got := grantSize(c.limit, c.queued); got != c.want {
			t.Errorf("grantSize(%d, %d) = %d, want %d", c.limit, c.queued, got, c.want)
		}
	}
}

// sharedSQLite is an SQLite store the engine takes for a shared one: its windows grant every
// slot asked for, and it counts the grants.
type sharedSQLite struct {
	*sqlite.Store
	mu     sync.Mutex
	grants int
}

func (s *sharedSQLite) Listen(ctx context.Context, fn func(store.Change)) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *sharedSQLite) TakeSlots(ctx context.Context, reqs []store.SlotRequest) ([]store.SlotGrant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.SlotGrant, len(reqs))
	for i, r := range reqs {
		s.grants++
		out[i] = store.SlotGrant{ID: int64(s.grants), WebhookID: r.WebhookID, Granted: r.Want}
	}
	return out, nil
}

func (s *sharedSQLite) SettleSlots(context.Context, []store.SlotSettle) error { return nil }

// TestTricklingDeliveriesShareGrants: deliveries that arrive one at a time to a webhook with a
// large limit are sent on a few grants, not one grant each.
func TestTricklingDeliveriesShareGrants(t *testing.T) {
	const events = 100
	var received atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { received.Add(1) }))
	defer receiver.Close()
	ctx := context.Background()
	st := &sharedSQLite{Store: openStore(t)}
	now := time.Now()
	a := createWebhook(t, st, receiver.URL)
	e := New(Config{Store: st, Owner: "grants", AllowPrivate: true, PollInterval: 10 * time.Millisecond})
	if e.shared == nil {
		t.Fatal("the engine does not take the store for a shared one")
	}
	stop := runEngine(t, e)
	start := time.Now()
	for i := range events {
		ev := store.NewEvent{ID: fmt.Sprintf("evt-%03d", i), AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: time.Now()}
		if _, err := st.Publish(ctx, store.PublishParams{Events: []store.NewEvent{ev}, IdempotencySince: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		e.Notify()
		time.Sleep(2 * time.Millisecond)
	}
	eventually(t, 30*time.Second, func() bool { return received.Load() >= events },
		func() string { return fmt.Sprintf("%d of %d deliveries received", received.Load(), events) })
	took := time.Since(start)
	stop()
	// A grant lasts grantTTL: one per grantTTL of the run, and a couple more, will do. Asked
	// for one slot at a time, the deliveries took about one grant each.
	st.mu.Lock()
	defer st.mu.Unlock()
	if want := int(took/grantTTL) + 3; st.grants > want {
		t.Errorf("%d deliveries over %v took %d grants, want at most %d", events, took.Round(time.Millisecond), st.grants, want)
	}
}
