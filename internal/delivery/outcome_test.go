package delivery

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
)

// completeLog is an SQLite store that records when each write of outcomes began and how many
// outcomes it carried.
type completeLog struct {
	*sqlite.Store
	mu     sync.Mutex
	starts []time.Time
	sizes  []int
}

func (s *completeLog) Complete(ctx context.Context, outcomes []store.Outcome) error {
	s.mu.Lock()
	s.starts = append(s.starts, time.Now())
	s.sizes = append(s.sizes, len(outcomes))
	s.mu.Unlock()
	return s.Store.Complete(ctx, outcomes)
}

// TestOutcomesShareWrites: outcomes that come in while the last write is under outcomeInterval
// old wait and share the next write, so writes begin at least outcomeInterval apart and carry
// many outcomes each; every outcome is written, the last ones at once when Run returns.
func TestOutcomesShareWrites(t *testing.T) {
	const events = 2000
	receiver := newHoldingReceiver(t, func(int) time.Duration { return 0 }, nil)
	st := &completeLog{Store: openStore(t)}
	a := createWebhook(t, st, receiver.URL)
	publishEvents(t, st, a, events)

	e := New(Config{Store: st, Owner: "outcomes", AllowPrivate: true, Concurrency: 16,
		WebhookConcurrency: 16, PollInterval: 10 * time.Millisecond})
	e.cpu = func() (time.Duration, bool) { return 0, true }
	stop := runEngine(t, e)
	receiver.waitAnswered(t, events, 60*time.Second)
	stop()

	st.mu.Lock()
	defer st.mu.Unlock()
	written := 0
	for i, n := range st.sizes {
		written += n
		if i == 0 || i == len(st.sizes)-1 {
			continue // the last may be Run's final write, which waits for nothing
		}
		// The engine takes the time just before it calls Complete; allow for the call itself.
		if gap := st.starts[i].Sub(st.starts[i-1]); gap < outcomeInterval-5*time.Millisecond {
			t.Errorf("write %d began %v after the one before it, want at least %v", i+1, gap, outcomeInterval)
		}
	}
	if written != events {
		t.Errorf("%d outcomes written, want %d", written, events)
	}
	if len(st.sizes) > events/10 {
		t.Errorf("%d writes for %d outcomes: they did not share writes", len(st.sizes), events)
	}
	ctx := context.Background()
	hooks, _, err := st.ListWebhooks(ctx, a.ID, store.WebhookFilter{}, store.Page{Size: 10})
	if err != nil || len(hooks) != 1 {
		t.Fatalf("webhooks %v, %v", hooks, err)
	}
	_, succeeded, err := st.ListDeliveries(ctx, a.ID, hooks[0].ID, store.DeliveryFilter{Status: store.StatusSucceeded}, store.Page{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if succeeded != events {
		t.Errorf("%d deliveries stored as succeeded after Run returned, want %d", succeeded, events)
	}
	t.Logf("%d outcomes in %d writes", written, len(st.sizes))
}
