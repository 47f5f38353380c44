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
// old wait and share the next write, so writes begin at least outcomeInterval apart (or carry a
// full outcomeBatch, which goes at once) and carry many outcomes each; every outcome is written,
// the last ones at once when Run returns.
func TestOutcomesShareWrites(t *testing.T) {
	const events = 2000
	// 16 in flight answered in 1 ms or more: at most about 800 outcomes in an interval, fewer
	// than a full batch, so the interval is what spaces the writes.
	receiver := newHoldingReceiver(t, func(int) time.Duration { return time.Millisecond }, nil)
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
		if i == 0 || i == len(st.sizes)-1 || n == outcomeBatch {
			continue // the last may be Run's final write, which waits for nothing; a full batch waits neither
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
	t.Logf("%d outcomes in %d writes of %v", written, len(st.sizes), st.sizes)
}

// claimLog is an SQLite store that records the limit of each claim that took deliveries.
type claimLog struct {
	*sqlite.Store
	mu     sync.Mutex
	limits []int
}

func (s *claimLog) Claim(ctx context.Context, p store.ClaimParams) ([]store.Job, error) {
	jobs, err := s.Store.Claim(ctx, p)
	if len(jobs) > 0 {
		s.mu.Lock()
		s.limits = append(s.limits, p.Limit)
		s.mu.Unlock()
	}
	return jobs, err
}

// TestClaimsWaitForRoom: while the engine holds deliveries, a claim waits until there is room
// for minClaim of them rather than taking the few slots the last attempts freed, so a backlog
// is claimed in a few large commits.
func TestClaimsWaitForRoom(t *testing.T) {
	const events, hooks = 200, 4
	// Each request held 10 ms: the engine stays full, and attempts free a slot at a time.
	receiver := newHoldingReceiver(t, func(int) time.Duration { return 10 * time.Millisecond }, nil)
	st := &claimLog{Store: openStore(t)}
	a := createWebhook(t, st, receiver.URL)
	for range hooks - 1 { // every event goes to each of them: a claim's deliveries spread over them
		addWebhook(t, st, a.ID, receiver.URL)
	}
	publishEvents(t, st, a, events)

	e := New(Config{Store: st, Owner: "claims", AllowPrivate: true, Concurrency: 16, WebhookConcurrency: 4,
		MaxHeld: 64, ClaimBatch: 32, PollInterval: time.Millisecond})
	e.cpu = func() (time.Duration, bool) { return 0, true }
	stop := runEngine(t, e)
	receiver.waitAnswered(t, events*hooks, 60*time.Second)
	stop()

	st.mu.Lock()
	defer st.mu.Unlock()
	for i, limit := range st.limits {
		if limit < e.minClaim() {
			t.Errorf("claim %d of %d asked for %d deliveries, want at least %d", i+1, len(st.limits), limit, e.minClaim())
		}
	}
	if e.minClaim() != 8 {
		t.Errorf("minClaim is %d with ClaimBatch 32 and MaxHeld 64, want 8", e.minClaim())
	}
	t.Logf("%d claims for %d deliveries", len(st.limits), events*hooks)
}

// TestLeaveRoomToClaims: while the last claim filled its room (more may be due in the store),
// a publish takes no deliveries once the engine holds all but minClaim of MaxHeld, so that
// the claims, not the newest events, get the room the attempts free; with nothing more due, a
// publish may fill it.
func TestLeaveRoomToClaims(t *testing.T) {
	e := New(Config{Store: openStore(t), Owner: "lease", MaxHeld: 64, ClaimBatch: 32})
	lease := func(held int, more bool) bool {
		e.mu.Lock()
		e.held = map[int64]struct{}{}
		for i := range held {
			e.held[int64(i+1)] = struct{}{}
		}
		e.more = more
		e.mu.Unlock()
		_, _, ok := e.Lease()
		return ok
	}
	for _, c := range []struct {
		held int
		more bool
		want bool
	}{
		{0, true, true}, {55, true, true}, {56, true, false}, {63, true, false},
		{56, false, true}, {63, false, true}, {64, false, false},
	} {
		if got := lease(c.held, c.more); got != c.want {
			t.Errorf("Lease with %d of 64 held, more due %v: %v, want %v", c.held, c.more, got, c.want)
		}
	}
}
