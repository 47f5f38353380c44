package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPruneStopsAtTheCutoff: pruning walks ids up to the first delivery created after the
// cutoff, and deletes exactly the finished deliveries completed before it, gaps or not.
func TestPruneStopsAtTheCutoff(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, _, err := s.CreateAccount(ctx, store.Account{Email: "p@acme.test", CreatedAt: t0}, store.NewAPIKey{Prefix: "p", Hash: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://x.test", Secret: "s",
		MaxThroughputPerMinute: 60, Status: store.WebhookActive, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: fmt.Sprintf("e%03d", i), AccountID: a.ID,
			Type: "message-send", Body: []byte(`{}`), CreatedAt: at}}}); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := s.Claim(ctx, store.ClaimParams{Owner: "o", Now: t0.Add(n * time.Minute), Limit: n, LeaseUntil: t0.Add(1000 * time.Hour)})
	if err != nil || len(jobs) != n {
		t.Fatalf("claimed %d: %v", len(jobs), err)
	}
	var outcomes []store.Outcome
	for _, j := range jobs {
		if j.DeliveryID%7 == 0 {
			continue // left pending
		}
		outcomes = append(outcomes, store.Outcome{DeliveryID: j.DeliveryID, Owner: "o", Status: store.StatusSucceeded,
			At: j.CreatedAt.Add(time.Second), Attempt: &store.Attempt{Attempt: 1, At: j.CreatedAt, StatusCode: 200}})
	}
	if err := s.Complete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	// Two prunes at different cutoffs, in small steps, leave gaps for the second to cross.
	total := 0
	for _, cut := range []int{100, 200} {
		for {
			deleted, err := s.Prune(ctx, store.PruneParams{Before: t0.Add(time.Duration(cut) * time.Minute), IdempotencyBefore: t0, Limit: 7})
			if err != nil {
				t.Fatal(err)
			}
			total += deleted
			if deleted < 7 {
				break
			}
		}
		want := 0
		for i := range cut {
			if int64(i+1)%7 != 0 { // delivery ids start at 1
				want++
			}
		}
		if total != want {
			t.Fatalf("after pruning before minute %d: %d deleted, want %d", cut, total, want)
		}
	}
	bodies, err := s.EventBodies(ctx, []string{"e000", "e006", "e150", "e250"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bodies["e000"]; ok {
		t.Fatal("an event whose only delivery was pruned survived")
	}
	for _, id := range []string{"e006", "e250"} { // a pending delivery; not old enough
		if _, ok := bodies[id]; !ok {
			t.Fatalf("event %s was pruned", id)
		}
	}
}
