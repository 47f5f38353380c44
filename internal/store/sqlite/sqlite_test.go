package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openStore(t, t.TempDir()) })
}

// openStore opens the store in dir for the test, closed when it ends.
func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// accountWithWebhook creates an account with one message-send webhook.
func accountWithWebhook(t *testing.T, s *sqlite.Store, at time.Time) store.Account {
	t.Helper()
	ctx := context.Background()
	a, _, err := s.CreateAccount(ctx, store.Account{Email: "a@acme.test", CreatedAt: at}, store.NewAPIKey{Prefix: "p", Hash: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://x.test", Secret: "s",
		MaxThroughputPerMinute: 60, Status: store.WebhookActive, CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPruneStopsAtTheCutoff: pruning walks ids up to the first delivery created after the
// cutoff, and deletes exactly the finished deliveries completed before it, gaps or not.
func TestPruneStopsAtTheCutoff(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := accountWithWebhook(t, s, t0)
	const n = 300
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Minute)
		// Each minute also has an event no webhook takes ("n…"): only its age decides.
		if _, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: fmt.Sprintf("e%03d", i), AccountID: a.ID,
			Type: "message-send", Body: []byte(`{}`), CreatedAt: at}, {ID: fmt.Sprintf("n%03d", i), AccountID: a.ID,
			Type: "number-opt-in", Body: []byte(`{}`), CreatedAt: at}}}); err != nil {
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
	// Events are pruned in steps too; one more call with room for all leaves exactly those
	// created before the cutoff gone.
	if _, err := s.Prune(ctx, store.PruneParams{Before: t0.Add(200 * time.Minute), IdempotencyBefore: t0, Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	var alone []string
	for i := range n {
		alone = append(alone, fmt.Sprintf("n%03d", i))
	}
	if bodies, err = s.EventBodies(ctx, alone); err != nil {
		t.Fatal(err)
	}
	for i, id := range alone {
		if _, kept := bodies[id]; kept != (i >= 200) {
			t.Fatalf("event %s (minute %d) kept = %v after pruning before minute 200", id, i, kept)
		}
	}
}

// TestDeliveryIDsNeverRepeat: the writer gives delivery ids itself; after a restart, and after
// the newest deliveries are pruned away, it goes on from the highest id ever given.
func TestDeliveryIDsNeverRepeat(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	a := accountWithWebhook(t, s, t0)
	seq := 0
	publish := func(s *sqlite.Store) int64 {
		t.Helper()
		seq++
		res, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: fmt.Sprintf("e%d", seq), AccountID: a.ID,
			Type: "message-send", Body: []byte(`{}`), CreatedAt: t0}}, Owner: "o", LeaseUntil: t0.Add(time.Hour)})
		if err != nil || len(res[0].Jobs) != 1 {
			t.Fatalf("publish: %v %+v", err, res)
		}
		return res[0].Jobs[0].DeliveryID
	}
	var last int64
	for range 3 {
		last = publish(s)
	}
	// Finish and prune every delivery: the table is empty, its highest id forgotten.
	var outcomes []store.Outcome
	for id := int64(1); id <= last; id++ {
		outcomes = append(outcomes, store.Outcome{DeliveryID: id, Owner: "o", Status: store.StatusSucceeded, At: t0,
			Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}})
	}
	if err := s.Complete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx, store.PruneParams{Before: t0.Add(time.Hour), IdempotencyBefore: t0, Limit: 100}); err != nil || n != 3 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if id := publish(s); id <= last {
		t.Fatalf("after pruning and a restart the next delivery got id %d; the highest given before was %d", id, last)
	}
}

// TestCheckpointer: what commits append to the WAL reaches the database file without the
// writer's automatic checkpoint (which waits for 4,000 pages; these commits write fewer).
func TestCheckpointer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := accountWithWebhook(t, s, t0)
	file := filepath.Join(dir, sqlite.FileName)
	size := func() int64 {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(300 * time.Millisecond) // the set-up's own commits are copied
	before := size()
	body := []byte(`{"text":"` + strings.Repeat("x", 1000) + `"}`)
	for i := range 10 {
		var events []store.NewEvent
		for j := range 20 {
			events = append(events, store.NewEvent{ID: fmt.Sprintf("e%02d-%02d", i, j), AccountID: a.ID, Type: "message-send", Body: body, CreatedAt: t0})
		}
		if _, err := s.Publish(ctx, store.PublishParams{Events: events}); err != nil {
			t.Fatal(err)
		}
	}
	const grown = 200 * 1000 // 200 bodies of 1 KB
	for deadline := time.Now().Add(5 * time.Second); size() < before+grown; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes 5s after 200 KB were committed, %d before: nothing checkpointed it", size(), before)
		}
	}
}

// TestWriterStats: the writer counts each commit and the writes in it, and its time.
func TestWriterStats(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := accountWithWebhook(t, s, t0)
	before := s.WriterStats()
	// One at a time: each write is a commit of its own.
	for i := range 5 {
		events := []store.NewEvent{{ID: fmt.Sprintf("w%d", i), AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: t0}}
		if _, err := s.Publish(ctx, store.PublishParams{Events: events}); err != nil {
			t.Fatal(err)
		}
	}
	after := s.WriterStats()
	if c, w := after.Commits-before.Commits, after.Writes-before.Writes; c != 5 || w != 5 {
		t.Errorf("5 publishes one after the other: %d commits of %d writes, want 5 of 5", c, w)
	}
	busy, committing := after.Busy-before.Busy, after.Committing-before.Committing
	if committing <= 0 || busy < committing {
		t.Errorf("busy %v, committing %v: want committing > 0 and within busy", busy, committing)
	}
	var timed int64
	for i := range after.CommitsBy {
		timed += after.CommitsBy[i] - before.CommitsBy[i]
	}
	if timed != 5 {
		t.Errorf("5 commits, %d of them counted by duration (%v → %v)", timed, before.CommitsBy, after.CommitsBy)
	}
}

// TestCommitsWithFdatasync: where the platform has fdatasync(2), opening a store makes SQLite
// commit with it, as SQLite's own Linux builds do, not with the transpiled library's fsync.
func TestCommitsWithFdatasync(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fdatasync is switched on where the library can use it; checked on Linux")
	}
	openStore(t, t.TempDir())
	if !msqlite.FdatasyncEnabled() {
		t.Error("after Open, SQLite still commits with fsync(2)")
	}
}
