package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

// storeWithWebhooks opens a store in dir with an account and n active message-send webhooks.
func storeWithWebhooks(t *testing.T, dir string, n int, at time.Time) (*Store, store.Account, []store.Webhook) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := s.CreateAccount(ctx, store.Account{Email: "f@acme.test", Name: "F", CreatedAt: at}, store.NewAPIKey{Prefix: "p", Hash: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	var hooks []store.Webhook
	for range n {
		w, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com/h", Secret: "s",
			SkipErrorCodes: []string{}, RetryOnError: true, MaxThroughputPerMinute: 600, Status: store.WebhookActive, CreatedAt: at, UpdatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w)
	}
	return s, a, hooks
}

// publishAt publishes one message-send event at at, leased to owner when owner is set.
func publishAt(t *testing.T, s *Store, a store.Account, id string, at time.Time, owner string) store.Published {
	t.Helper()
	p := store.PublishParams{Events: []store.NewEvent{{ID: id, AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: at}},
		IdempotencySince: at.Add(-time.Hour), Owner: owner, LeaseUntil: at.Add(time.Minute)}
	res, err := s.Publish(context.Background(), p)
	if err != nil || res[0].Err != nil {
		t.Fatalf("publish %s: %v %+v", id, err, res)
	}
	return res[0]
}

// publishMany publishes n message-send events at at in one call, leased to no one.
func publishMany(t *testing.T, s *Store, a store.Account, n int, at time.Time) {
	t.Helper()
	events := make([]store.NewEvent, n)
	for i := range events {
		events[i] = store.NewEvent{ID: fmt.Sprintf("e%d", i), AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: at}
	}
	if _, err := s.Publish(context.Background(), store.PublishParams{Events: events, IdempotencySince: at.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func fanoutCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM fanouts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func claimIDs(t *testing.T, s *Store, now time.Time, limit int) []int64 {
	t.Helper()
	jobs, err := s.Claim(context.Background(), store.ClaimParams{Owner: "n", Now: now, Limit: limit, LeaseUntil: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, j := range jobs {
		ids = append(ids, j.DeliveryID)
	}
	return ids
}

// TestFanoutIDsSurviveReopen: deliveries stored as fan-outs keep their ids through a restart;
// a publish after it takes the next ones, and claims write every one of them to its webhook.
func TestFanoutIDsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, dir, 2, t0)
	for i := range 3 {
		publishAt(t, s, a, fmt.Sprintf("e%d", i), t0, "")
	}
	if n := fanoutCount(t, s); n != 3 {
		t.Fatalf("%d fan-outs after three publishes without a lease, want 3", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	publishAt(t, s, a, "e3", t0.Add(time.Second), "")
	jobs, err := s.Claim(ctx, store.ClaimParams{Owner: "n", Now: t0.Add(time.Minute), Limit: 100, LeaseUntil: t0.Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 8 {
		t.Fatalf("claimed %d deliveries, want 8", len(jobs))
	}
	for i, j := range jobs {
		wantHook := hooks[i%2].ID
		if j.DeliveryID != int64(i+1) || j.WebhookID != wantHook || j.EventID != fmt.Sprintf("e%d", i/2) || j.WebhookVersion != 1 {
			t.Fatalf("job %d: %+v, want delivery %d to webhook %d of e%d", i, j, i+1, wantHook, i/2)
		}
	}
	if n := fanoutCount(t, s); n != 0 {
		t.Fatalf("%d fan-outs left after claiming them all", n)
	}
	d, _, err := s.GetDelivery(ctx, a.ID, 8)
	if err != nil || d.Status != store.StatusPending || d.WebhookID != hooks[1].ID || d.EventID != "e3" || !d.CreatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("delivery 8 after its claim: %+v (%v)", d, err)
	}
}

// TestClaimTakesTheEarliestDueFirst: a claim merges delivery rows and fan-outs in the order
// they fell due, and takes a fan-out in part when it has less room than the fan-out holds.
func TestClaimTakesTheEarliestDueFirst(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, _ := storeWithWebhooks(t, t.TempDir(), 1, t0)
	defer s.Close()
	publishAt(t, s, a, "first", t0, "") // delivery 1, a fan-out due at t0
	leased := publishAt(t, s, a, "retried", t0.Add(time.Second), "n")
	retry := leased.Jobs[0].DeliveryID // 2, a row: failed once, due again at t0+2s
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: retry, Owner: "n", Status: store.StatusPending, At: t0.Add(time.Second),
		NextAttemptAt: t0.Add(2 * time.Second), Attempt: &store.Attempt{Attempt: 1, At: t0.Add(time.Second), StatusCode: 500}}}); err != nil {
		t.Fatal(err)
	}
	publishAt(t, s, a, "third", t0.Add(3*time.Second), "") // delivery 3, a fan-out due at t0+3s
	now := t0.Add(time.Minute)
	var order []int64
	for range 3 {
		order = append(order, claimIDs(t, s, now, 1)...)
	}
	if !slices.Equal(order, []int64{1, retry, 3}) {
		t.Fatalf("claimed one at a time: %v, want [1 %d 3]", order, retry)
	}
	if more := claimIDs(t, s, now, 10); len(more) != 0 {
		t.Fatalf("claimed %v after every delivery was taken", more)
	}

	// A fan-out of three webhooks, taken two then one.
	s2, a2, hooks := storeWithWebhooks(t, t.TempDir(), 3, t0)
	defer s2.Close()
	publishAt(t, s2, a2, "wide", t0, "")
	if got := claimIDs(t, s2, now, 2); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("claimed %v with room for two, want [1 2]", got)
	}
	jobs, err := s2.Claim(ctx, store.ClaimParams{Owner: "n", Now: now, Limit: 5, LeaseUntil: now.Add(time.Minute)})
	if err != nil || len(jobs) != 1 || jobs[0].DeliveryID != 3 || jobs[0].WebhookID != hooks[2].ID {
		t.Fatalf("the rest of the fan-out: %+v (%v), want delivery 3 to webhook %d", jobs, err, hooks[2].ID)
	}
}

// TestReadsSeeFanouts: the API's reads and changes of deliveries see those stored as
// fan-outs: get, list, queue counts, a retry, and cancelling a deleted webhook's.
func TestReadsSeeFanouts(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 2, t0)
	defer s.Close()
	publishAt(t, s, a, "e0", t0, "")
	q, err := s.QueueStats(ctx, t0)
	if err != nil || q.Due != 2 || q.Scheduled != 0 {
		t.Fatalf("queue stats with one fan-out of two: %+v (%v)", q, err)
	}
	if q, err = s.QueueStats(ctx, t0.Add(-time.Second)); err != nil || q.Due != 0 || q.Scheduled != 2 {
		t.Fatalf("queue stats before the fan-out's time: %+v (%v)", q, err)
	}
	list, total, err := s.ListDeliveries(ctx, a.ID, hooks[1].ID, store.DeliveryFilter{}, store.Page{Page: 0, Size: 10})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != 2 || list[0].Status != store.StatusPending || !list[0].NextAttemptAt.Equal(t0) {
		t.Fatalf("list of webhook %d: %+v, total %d (%v)", hooks[1].ID, list, total, err)
	}
	if n := fanoutCount(t, s); n != 0 {
		t.Fatalf("%d fan-outs after a read wrote their rows", n)
	}

	publishAt(t, s, a, "e1", t0.Add(time.Second), "") // deliveries 3 and 4
	d, err := s.RetryDelivery(ctx, a.ID, 4, t0.Add(2*time.Second))
	if err != nil || d.ID != 4 || d.Status != store.StatusPending || d.WebhookID != hooks[1].ID {
		t.Fatalf("retry of delivery 4, a fan-out's: %+v (%v)", d, err)
	}
	publishAt(t, s, a, "e2", t0.Add(3*time.Second), "") // deliveries 5 and 6
	if d, _, err = s.GetDelivery(ctx, a.ID, 5); err != nil || d.Status != store.StatusPending || d.EventID != "e2" {
		t.Fatalf("get delivery 5, a fan-out's: %+v (%v)", d, err)
	}
	publishAt(t, s, a, "e3", t0.Add(4*time.Second), "") // deliveries 7 and 8
	if err := s.DeleteWebhook(ctx, a.ID, hooks[0].ID, t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]string{7: store.StatusCancelled, 8: store.StatusPending} {
		if d, _, err := s.GetDelivery(ctx, a.ID, id); err != nil || d.Status != want {
			t.Fatalf("delivery %d after webhook %d was deleted: %+v (%v), want %s", id, hooks[0].ID, d, err, want)
		}
	}
}

// TestFanoutMigrationDown: going below migration 6 writes the fan-outs' deliveries as rows.
func TestFanoutMigrationDown(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, dir, 2, t0)
	publishAt(t, s, a, "e0", t0, "")
	publishAt(t, s, a, "e1", t0.Add(time.Second), "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := migrateDown(t, dir, 5)
	rows, err := db.Query(`SELECT id, webhook_id, event_id, status, next_attempt_at, created_at FROM deliveries ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, hook, next, created int64
		var event, status string
		if err := rows.Scan(&id, &hook, &event, &status, &next, &created); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%d:%s:%s:%d:%d", id, hook, event, status, next, created))
	}
	ms0, ms1 := ms(t0), ms(t0.Add(time.Second))
	want := []string{
		fmt.Sprintf("1:%d:e0:pending:%d:%d", hooks[0].ID, ms0, ms0), fmt.Sprintf("2:%d:e0:pending:%d:%d", hooks[1].ID, ms0, ms0),
		fmt.Sprintf("3:%d:e1:pending:%d:%d", hooks[0].ID, ms1, ms1), fmt.Sprintf("4:%d:e1:pending:%d:%d", hooks[1].ID, ms1, ms1),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("deliveries after going down to 5:\n got %v\nwant %v", got, want)
	}
}

// TestListSettlesInChunks: a listing writes the rows of more fan-outs than one write of settle
// takes, and lists them all.
func TestListSettlesInChunks(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 1, t0)
	defer s.Close()
	const n = 2*settleChunk + 5
	publishMany(t, s, a, n, t0)
	before := s.WriterStats().Commits
	list, total, err := s.ListDeliveries(ctx, a.ID, hooks[0].ID, store.DeliveryFilter{Status: store.StatusPending}, store.Page{Page: 0, Size: 5})
	if err != nil || total != n || len(list) != 5 || list[0].ID != n {
		t.Fatalf("list of %d pending deliveries: %d listed of %d, first %+v (%v)", n, len(list), total, list, err)
	}
	if commits := s.WriterStats().Commits - before; commits != 3 {
		t.Fatalf("settling %d fan-outs took %d commits, want 3 of at most %d", n, commits, settleChunk)
	}
	if left := fanoutCount(t, s); left != 0 {
		t.Fatalf("%d fan-outs left after the listing", left)
	}
}

// TestListSettlesItsWebhookOnly: a listing writes the rows of the fan-outs with a delivery to
// its webhook and leaves the others, interleaved with them, where they are: another account's,
// and its own account's to another webhook.
func TestListSettlesItsWebhookOnly(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 1, t0)
	defer s.Close()
	b, _, err := s.CreateAccount(ctx, store.Account{Email: "g@acme.test", Name: "G", CreatedAt: t0}, store.NewAPIKey{Prefix: "q", Hash: []byte("q")})
	if err != nil {
		t.Fatal(err)
	}
	other := hooks[0]
	other.ID, other.AccountID = 0, b.ID
	if _, err := s.CreateWebhook(ctx, other); err != nil {
		t.Fatal(err)
	}
	replies := hooks[0]
	replies.ID, replies.Event = 0, "message-reply"
	if _, err := s.CreateWebhook(ctx, replies); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publishAt(t, s, a, fmt.Sprintf("a%d", i), t0, "")
		publishAt(t, s, b, fmt.Sprintf("b%d", i), t0, "")
		p := store.PublishParams{Events: []store.NewEvent{{ID: fmt.Sprintf("r%d", i), AccountID: a.ID, Type: "message-reply", Body: []byte(`{}`), CreatedAt: t0}},
			IdempotencySince: t0.Add(-time.Hour)}
		if res, err := s.Publish(ctx, p); err != nil || res[0].Err != nil {
			t.Fatalf("publish r%d: %v %+v", i, err, res)
		}
	}
	list, total, err := s.ListDeliveries(ctx, a.ID, hooks[0].ID, store.DeliveryFilter{}, store.Page{Page: 0, Size: 10})
	if err != nil || total != 3 || len(list) != 3 || list[0].ID != 7 || list[1].ID != 4 || list[2].ID != 1 {
		t.Fatalf("deliveries of webhook %d: %+v, total %d (%v)", hooks[0].ID, list, total, err)
	}
	var left []string
	rows, err := s.rdb.Query(`SELECT account_id, first_delivery FROM fanouts ORDER BY first_delivery`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var account, first int64
		if err := rows.Scan(&account, &first); err != nil {
			t.Fatal(err)
		}
		left = append(left, fmt.Sprintf("%d:%d", account, first))
	}
	var want []string
	for _, first := range []int64{2, 3, 5, 6, 8, 9} { // b's, a's replies, in turn
		account := b.ID
		if first%3 == 0 {
			account = a.ID
		}
		want = append(want, fmt.Sprintf("%d:%d", account, first))
	}
	if !slices.Equal(left, want) {
		t.Fatalf("fan-outs after the listing of webhook %d: %v, want %v (another account's, and another webhook's)", hooks[0].ID, left, want)
	}
}

// TestListOfOtherStatusesLeavesFanouts: a listing of a status that no fan-out holds (all
// theirs are pending) writes nothing and leaves the fan-outs where they are.
func TestListOfOtherStatusesLeavesFanouts(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 2, t0)
	defer s.Close()
	publishAt(t, s, a, "e0", t0, "")
	ids := claimIDs(t, s, t0, 1) // delivery 1, a row now; delivery 2 stays in its fan-out
	if !slices.Equal(ids, []int64{1}) {
		t.Fatalf("claimed %v, want [1]", ids)
	}
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: 1, Owner: "n", Status: store.StatusFailed, At: t0,
		Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 500}}}); err != nil {
		t.Fatal(err)
	}
	publishAt(t, s, a, "e1", t0.Add(time.Second), "") // deliveries 3 and 4, a fan-out
	before := s.WriterStats().Commits
	list, total, err := s.ListDeliveries(ctx, a.ID, hooks[0].ID, store.DeliveryFilter{Status: store.StatusFailed}, store.Page{Page: 0, Size: 10})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != 1 {
		t.Fatalf("failed deliveries of webhook %d: %+v, total %d (%v)", hooks[0].ID, list, total, err)
	}
	if commits := s.WriterStats().Commits - before; commits != 0 {
		t.Fatalf("a listing of failed deliveries made %d commits", commits)
	}
	if n := fanoutCount(t, s); n != 2 {
		t.Fatalf("%d fan-outs after a listing of failed deliveries, want 2", n)
	}
	// A listing that may find pending deliveries still writes their rows first.
	list, total, err = s.ListDeliveries(ctx, a.ID, hooks[1].ID, store.DeliveryFilter{}, store.Page{Page: 0, Size: 10})
	if err != nil || total != 2 || len(list) != 2 || list[0].ID != 4 || list[1].ID != 2 {
		t.Fatalf("deliveries of webhook %d: %+v, total %d (%v)", hooks[1].ID, list, total, err)
	}
	if n := fanoutCount(t, s); n != 0 {
		t.Fatalf("%d fan-outs after a listing of every status", n)
	}
}

// TestCancelInChunks: deleting a webhook with a backlog cancels every pending delivery of its,
// in fan-outs and in rows (leased ones included), in several writes, and nothing else: its
// delivered ones and the other webhook's stay as they were.
func TestCancelInChunks(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 2, t0)
	defer s.Close()
	// Event k has deliveries 2k+1 (webhook 0) and 2k+2 (webhook 1). The first three are rows:
	// 2 succeeded, 4 leased, 6 pending; the rest are fan-outs, and the fan-out of deliveries
	// 4095 and 4096 spans two steps of the cancellation.
	for k := range 3 {
		publishAt(t, s, a, fmt.Sprintf("r%d", k), t0, "")
	}
	if ids := claimIDs(t, s, t0, 6); len(ids) != 6 {
		t.Fatalf("claimed %v, want 6", ids)
	}
	if err := s.Complete(ctx, []store.Outcome{
		{DeliveryID: 2, Owner: "n", Status: store.StatusSucceeded, At: t0, Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}},
		{DeliveryID: 6, Owner: "n", Status: store.StatusPending, NextAttemptAt: t0.Add(time.Hour), At: t0},
	}); err != nil {
		t.Fatal(err)
	}
	const n = 3*cancelChunk + 5
	publishMany(t, s, a, n, t0)
	s.cancelWait = time.Hour // all of it before DeleteWebhook returns, however slow this machine
	before := s.WriterStats().Commits
	if err := s.DeleteWebhook(ctx, a.ID, hooks[1].ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if commits := s.WriterStats().Commits - before; commits < 4 {
		t.Fatalf("deleting a webhook with %d pending deliveries took %d commits, want the delete and at least 3 more", n+2, commits)
	}
	var left int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM fanouts, json_each(webhooks) WHERE value = ?`, hooks[1].ID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d deliveries of the deleted webhook left in fan-outs", left)
	}
	count := func(hook int64, status, lastError string) int {
		t.Helper()
		var c int
		err := s.rdb.QueryRow(`SELECT count(*) FROM deliveries WHERE webhook_id = ? AND status = ? AND coalesce(last_error, '') = ?`,
			hook, status, lastError).Scan(&c)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := count(hooks[1].ID, store.StatusCancelled, "webhook deleted"); c != n+2 {
		t.Fatalf("%d deliveries of the deleted webhook cancelled, want %d", c, n+2)
	}
	if c := count(hooks[1].ID, store.StatusSucceeded, ""); c != 1 {
		t.Fatalf("%d deliveries of the deleted webhook still succeeded, want 1", c)
	}
	if _, total, err := s.ListDeliveries(ctx, a.ID, hooks[0].ID, store.DeliveryFilter{Status: store.StatusPending},
		store.Page{Page: 0, Size: 1}); err != nil || total != n+3 {
		t.Fatalf("the other webhook has %d pending deliveries, want %d (%v)", total, n+3, err)
	}
}

// TestOnStop: OnStop's function hears of a webhook deleted, disabled by an update and
// disabled by the health flush once each, after the change and before its pending deliveries
// are cancelled.
func TestOnStop(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 3, t0)
	defer s.Close()
	publishAt(t, s, a, "e0", t0, "") // one pending delivery to each webhook, in a fan-out
	pending := func(hook int64) int { return pendingTo(t, s, hook) }
	var got []string
	s.OnStop(func(w store.Webhook, deleted bool) {
		got = append(got, fmt.Sprintf("%d deleted=%t status=%s version=%d pending=%d", w.ID, deleted, w.Status, w.Version, pending(w.ID)))
	})
	if err := s.DeleteWebhook(ctx, a.ID, hooks[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateWebhook(ctx, a.ID, hooks[1].ID, func(w *store.Webhook) error { w.Status = store.WebhookDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateHealth(ctx, []int64{hooks[2].ID}, func(w *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
		w.Status, w.DisabledReason = store.WebhookDisabled, "failing"
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("%d deleted=true status= version=0 pending=1", hooks[0].ID),
		fmt.Sprintf("%d deleted=false status=disabled version=%d pending=1", hooks[1].ID, hooks[1].Version+1),
		fmt.Sprintf("%d deleted=false status=disabled version=%d pending=1", hooks[2].ID, hooks[2].Version+1),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("OnStop heard\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range hooks[:2] {
		if n := pending(w.ID); n != 0 {
			t.Fatalf("webhook %d: %d deliveries still pending after its change returned", w.ID, n)
		}
	}
	s.deletingWG.Wait() // the health flush does not wait for its cancelling
	if n := pending(hooks[2].ID); n != 0 {
		t.Fatalf("webhook %d: %d deliveries still pending once the health flush's cancelling is done", hooks[2].ID, n)
	}
}

// TestHooksRoundTrip: a fan-out's webhooks read back as written, and what is not an array of
// ids is an error naming it.
func TestHooksRoundTrip(t *testing.T) {
	for _, ids := range [][]int64{{7}, {1, 22, 333}} {
		got, err := parseHooks(joinHooks(ids))
		if err != nil || !slices.Equal(got, ids) {
			t.Fatalf("%v read back as %v (%v)", ids, got, err)
		}
	}
	if s := hooksJSON([]target{{id: 1, status: store.WebhookActive}, {id: 2, status: store.WebhookDisabled}}); s != "" {
		t.Fatalf("webhooks with a disabled one as %q, want none (written as rows)", s)
	}
	for _, bad := range []string{"", "[]", "12]", "[12", "[1,x]"} {
		if _, err := parseHooks(bad); err == nil {
			t.Fatalf("parseHooks(%q): no error", bad)
		}
	}
}

// deleteInBackground opens a store in dir with two webhooks and n events in fan-outs (event k has
// deliveries 2k+1 to the first webhook and 2k+2 to the second), then deletes the second with
// no time to cancel before DeleteWebhook returns, the writer held from the moment the delete
// is committed until release is called: every cancelling write is still to come.
// (changeInBackground does it with the change given.)
func deleteInBackground(t *testing.T, dir string, n int, at time.Time) (s *Store, a store.Account, hooks []store.Webhook, release func()) {
	t.Helper()
	return changeInBackground(t, dir, n, at, func(s *Store, a store.Account, w store.Webhook) error {
		return s.DeleteWebhook(context.Background(), a.ID, w.ID, at.Add(time.Minute))
	})
}

// disableInBackground is deleteInBackground with a disable (by UpdateWebhook) for the delete.
func disableInBackground(t *testing.T, dir string, n int, at time.Time) (s *Store, a store.Account, hooks []store.Webhook, release func()) {
	t.Helper()
	return changeInBackground(t, dir, n, at, func(s *Store, a store.Account, w store.Webhook) error {
		_, err := s.UpdateWebhook(context.Background(), a.ID, w.ID, func(w *store.Webhook) error {
			w.Status, w.UpdatedAt = store.WebhookDisabled, at.Add(time.Minute)
			return nil
		})
		return err
	})
}

func changeInBackground(t *testing.T, dir string, n int, at time.Time, change func(*Store, store.Account, store.Webhook) error) (s *Store, a store.Account, hooks []store.Webhook, release func()) {
	t.Helper()
	ctx := context.Background()
	s, a, hooks = storeWithWebhooks(t, dir, 2, at)
	publishMany(t, s, a, n, at)
	s.cancelWait = 0
	held, hold := make(chan struct{}), make(chan struct{})
	s.OnStop(func(store.Webhook, bool) {
		go s.write(ctx, func(*sql.Tx) error {
			close(held)
			<-hold
			return nil
		})
		<-held
	})
	if err := change(s, a, hooks[1]); err != nil {
		t.Fatal(err)
	}
	return s, a, hooks, sync.OnceFunc(func() { close(hold) })
}

// pendingTo counts webhook hook's pending deliveries, rows and fan-outs, as stored.
func pendingTo(t *testing.T, s *Store, hook int64) int {
	t.Helper()
	var n int
	err := s.rdb.QueryRow(`SELECT (SELECT count(*) FROM deliveries WHERE webhook_id = ?1 AND status = 'pending')
		+ (SELECT count(*) FROM fanouts, json_each(webhooks) WHERE value = ?1)`, hook).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeleteCancelsInBackground: a delete that has not cancelled its webhook's backlog within
// its wait returns; until the cancelling is done, reads show those deliveries as cancelled
// (the other webhook's stay pending), and then every one of them is cancelled in the store.
func TestDeleteCancelsInBackground(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	const n = 4 * cancelChunk
	s, a, hooks, release := deleteInBackground(t, t.TempDir(), n, t0)
	defer s.Close()
	defer release()

	if p := pendingTo(t, s, hooks[1].ID); p != n {
		t.Fatalf("%d deliveries of the deleted webhook pending in the store before its cancelling writes, want %d", p, n)
	}
	last := int64(2 * n) // the deleted webhook's newest, the last one cancelled
	storetest.CheckReadsAsCancelled(t, s, a.ID, "webhook deleted", last, hooks[1].ID, last-1, hooks[0].ID, t0.Add(time.Minute))
	storetest.CheckQueueAsCancelled(t, s, n)

	release()
	s.deletingWG.Wait()
	if p := pendingTo(t, s, hooks[1].ID); p != 0 {
		t.Fatalf("%d deliveries of the deleted webhook still pending once the cancelling is done", p)
	}
	var cancelled int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM deliveries WHERE webhook_id = ? AND status = 'cancelled'
		AND last_error = 'webhook deleted' AND completed_at = ?`, hooks[1].ID, ms(t0.Add(time.Minute))).Scan(&cancelled); err != nil {
		t.Fatal(err)
	}
	if cancelled != n {
		t.Fatalf("%d deliveries of the deleted webhook cancelled, want %d", cancelled, n)
	}
	if p := pendingTo(t, s, hooks[0].ID); p != n {
		t.Fatalf("the other webhook has %d pending deliveries, want %d", p, n)
	}
	if s.deletions() != nil || deletionRecords(t, s.rdb) != 0 {
		t.Fatalf("cancellations still listed as under way: %v, or recorded: %d", s.deletions(), deletionRecords(t, s.rdb))
	}
}

// deletionRecords counts the cancellations recorded in db's cancellations.
func deletionRecords(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM cancellations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCloseLeavesCancelToNextOpen: Close stops a delete's cancelling between two writes and
// returns, leaving the rest pending and the deletion recorded; the next Open reads those
// deliveries as cancelled at once and cancels them in the background, then drops the record.
// A disable's cancelling goes on in the same way, with its own reason.
func TestCloseLeavesCancelToNextOpen(t *testing.T) {
	t.Run("delete", func(t *testing.T) { testCloseLeavesCancelToNextOpen(t, "webhook deleted") })
	t.Run("disable", func(t *testing.T) { testCloseLeavesCancelToNextOpen(t, "webhook disabled") })
}

func testCloseLeavesCancelToNextOpen(t *testing.T, reason string) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	const n = 4 * cancelChunk
	dir := t.TempDir()
	var s *Store
	var a store.Account
	var hooks []store.Webhook
	var release func()
	if reason == "webhook deleted" {
		s, a, hooks, release = deleteInBackground(t, dir, n, t0)
	} else {
		s, a, hooks, release = disableInBackground(t, dir, n, t0)
	}
	storetest.CloseWhileCancelling(t, s, s.closing, release)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pending, cancelled int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM deliveries WHERE webhook_id = ?1 AND status = 'pending')
		+ (SELECT count(*) FROM fanouts, json_each(webhooks) WHERE value = ?1),
		(SELECT count(*) FROM deliveries WHERE webhook_id = ?1 AND status = 'cancelled')`, hooks[1].ID).Scan(&pending, &cancelled); err != nil {
		t.Fatal(err)
	}
	if pending == 0 || pending+cancelled != n || deletionRecords(t, db) != 1 {
		t.Fatalf("after Close, %d deliveries of the deleted webhook pending, %d cancelled, %d deletions recorded; want some pending, %d in all, 1 recorded",
			pending, cancelled, deletionRecords(t, db), n)
	}

	hold := make(chan struct{})
	testHookCancelBehind = func() { <-hold }
	t.Cleanup(func() { testHookCancelBehind = nil })
	release2 := sync.OnceFunc(func() { close(hold) })
	s, err = Open(context.Background(), dir, Options{})
	if err != nil {
		release2()
		t.Fatal(err)
	}
	defer s.Close()
	defer release2() // before Close, which waits for the cancelling
	if p := pendingTo(t, s, hooks[1].ID); p != pending {
		t.Fatalf("%d pending while the resumed cancelling is held, want %d", p, pending)
	}
	last := int64(2 * n)
	storetest.CheckReadsAsCancelled(t, s, a.ID, reason, last, hooks[1].ID, last-1, hooks[0].ID, t0.Add(time.Minute))
	storetest.CheckQueueAsCancelled(t, s, n)

	release2()
	s.deletingWG.Wait()
	if p := pendingTo(t, s, hooks[1].ID); p != 0 || deletionRecords(t, s.rdb) != 0 || s.deletions() != nil {
		t.Fatalf("after the resumed cancelling, %d pending, %d deletions recorded, under way %v; want none", p, deletionRecords(t, s.rdb), s.deletions())
	}
}

// TestDeleteDropsItsRecord: a delete whose cancelling ends before it returns, with or
// without deliveries to cancel, leaves no deletion recorded.
func TestDeleteDropsItsRecord(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	ctx := context.Background()
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 3, t0)
	defer s.Close()
	if err := s.DeleteWebhook(ctx, a.ID, hooks[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	publishMany(t, s, a, 100, t0)
	if err := s.DeleteWebhook(ctx, a.ID, hooks[1].ID, t0); err != nil {
		t.Fatal(err)
	}
	if p, r := pendingTo(t, s, hooks[1].ID), deletionRecords(t, s.rdb); p != 0 || r != 0 {
		t.Fatalf("after the deletes, %d deliveries pending to the deleted webhook, %d deletions recorded; want none", p, r)
	}
}

// TestQueueStatsLeaveOutDeletions: while a deleted webhook's deliveries are being cancelled,
// QueueStats counts none of them, neither rows nor deliveries in fan-outs.
func TestQueueStatsLeaveOutDeletions(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, t.TempDir(), 2, t0)
	defer s.Close()
	publishAt(t, s, a, "leased", t0, "engine-1") // a row to each webhook, leased
	publishMany(t, s, a, 3, t0)                  // fan-outs: three deliveries to each
	storetest.CheckQueueAsCancelled(t, s, 8)
	s.deleting.Lock()
	s.deleting.m = map[int64]cancellation{hooks[1].ID: {w: store.Webhook{ID: hooks[1].ID, AccountID: a.ID}, deleted: true}}
	s.deleting.Unlock()
	storetest.CheckQueueAsCancelled(t, s, 4)
}

// TestDisableCancelsInBackground: a disable, by its owner (UpdateWebhook) or by the health
// flush (UpdateHealth), that has not cancelled its webhook's backlog within its wait returns;
// until the cancelling is done, reads show those deliveries as cancelled with the disable's
// reason, and enabling the webhook again cancels what is left in its own write, so that none of
// them is claimed after it, while what is published then is delivered.
func TestDisableCancelsInBackground(t *testing.T) {
	for _, tt := range []struct {
		name, reason string
		disable      func(*Store, store.Webhook, time.Time) error
	}{
		{"UpdateWebhook", "webhook disabled", func(s *Store, w store.Webhook, at time.Time) error {
			_, err := s.UpdateWebhook(context.Background(), w.AccountID, w.ID, func(w *store.Webhook) error {
				w.Status, w.UpdatedAt = store.WebhookDisabled, at
				return nil
			})
			return err
		}},
		{"UpdateHealth", "webhook disabled: failing", func(s *Store, w store.Webhook, at time.Time) error {
			_, err := s.UpdateHealth(context.Background(), []int64{w.ID}, func(w *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
				w.Status, w.DisabledReason, w.UpdatedAt = store.WebhookDisabled, "failing", at
				return nil, nil
			})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
			const n = 4 * cancelChunk
			s, a, hooks := storeWithWebhooks(t, t.TempDir(), 2, t0)
			defer s.Close()
			publishMany(t, s, a, n, t0)
			s.cancelWait = 0
			hold := make(chan struct{})
			testHookCancelBehind = func() { <-hold }
			t.Cleanup(func() { testHookCancelBehind = nil })
			release := sync.OnceFunc(func() { close(hold) })
			defer release() // before Close, which waits for the cancelling

			off := t0.Add(time.Minute)
			if err := tt.disable(s, hooks[1], off); err != nil {
				t.Fatal(err)
			}
			if p := pendingTo(t, s, hooks[1].ID); p != n {
				t.Fatalf("%d deliveries of the disabled webhook pending in the store while its cancelling is held, want %d", p, n)
			}
			last := int64(2 * n)
			storetest.CheckReadsAsCancelled(t, s, a.ID, tt.reason, last, hooks[1].ID, last-1, hooks[0].ID, off)
			storetest.CheckQueueAsCancelled(t, s, n)

			if _, err := s.UpdateWebhook(ctx, a.ID, hooks[1].ID, func(w *store.Webhook) error {
				w.Status = store.WebhookActive
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if p := pendingTo(t, s, hooks[1].ID); p != 0 {
				t.Fatalf("%d deliveries of the webhook pending once it is enabled again, want none", p)
			}
			if s.deletions() != nil || deletionRecords(t, s.rdb) != 0 {
				t.Fatalf("cancellations still listed as under way: %v, or recorded: %d", s.deletions(), deletionRecords(t, s.rdb))
			}
			publishAt(t, s, a, "after", t0, "")
			release()
			s.deletingWG.Wait()
			storetest.CheckEnabledClaims(t, s, t0.Add(time.Hour), n+2, hooks[1].ID, "after")
		})
	}
}
