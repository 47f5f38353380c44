package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

// deletionSetup opens a store in a fresh schema with two webhooks of one account and n events
// published to both, so that event k has deliveries first+2k (the first webhook) and
// first+2k+1 (the second). It returns the store, the webhooks, the first delivery id, and
// unlock: until it is called, a transaction on a connection of the store's locks the second
// webhook's first delivery, and a cancelling of its deliveries waits behind it. (It must be
// called before Close, which waits for the store's connections to come back.)
func deletionSetup(t *testing.T, n int, at time.Time) (u, schema string, s *Store, a store.Account, hooks []store.Webhook, first int64, unlock func()) {
	t.Helper()
	ctx := context.Background()
	u, schema = pgtest.DatabaseURL(t), pgtest.NewSchema(t)
	s, err := Open(ctx, u, Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.cancelWait = 0
	a, _, err = s.CreateAccount(ctx, store.Account{Email: "d@acme.test", Name: "D", CreatedAt: at}, store.NewAPIKey{Prefix: "p", Hash: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w, err := s.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com/h", Secret: "s",
			SkipErrorCodes: []string{}, RetryOnError: true, MaxThroughputPerMinute: 600, Status: store.WebhookActive, CreatedAt: at, UpdatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w)
	}
	for b := 0; b < n; b += 1000 {
		events := make([]store.NewEvent, min(1000, n-b))
		for i := range events {
			events[i] = store.NewEvent{ID: fmt.Sprintf("e%d", b+i), AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: at}
		}
		if _, err := s.Publish(ctx, store.PublishParams{Events: events, IdempotencySince: at.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.pool.QueryRow(ctx, `SELECT min(id) FROM deliveries`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE`, first+1); err != nil {
		t.Fatal(err)
	}
	unlock = sync.OnceFunc(func() {
		if err := lock.Rollback(ctx); err != nil {
			t.Error(err)
		}
		conn.Release()
	})
	t.Cleanup(unlock)
	return u, schema, s, a, hooks, first, unlock
}

// count counts webhook hook's deliveries in status.
func count(t *testing.T, s *Store, hook int64, status string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE webhook_id = $1 AND status = $2`,
		hook, status).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// cancellationsLeft counts the cancellations recorded.
func cancellationsLeft(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM cancellations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDeleteCancelsInBackground: a delete that has not cancelled its webhook's deliveries
// within its wait returns; until the cancelling is done they read as cancelled at the delete's
// time (the other webhook's as pending), and then all of them are cancelled in the database.
func TestDeleteCancelsInBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	const n = 2*cancelChunk + 5
	_, _, s, a, hooks, first, unlock := deletionSetup(t, n, t0)
	defer s.Close()
	defer unlock()
	if err := s.DeleteWebhook(ctx, a.ID, hooks[1].ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if p := count(t, s, hooks[1].ID, store.StatusPending); p != n {
		t.Fatalf("%d deliveries of the deleted webhook pending in the database while its cancelling waits, want %d", p, n)
	}
	last := first + 2*n - 1
	storetest.CheckReadsAsCancelled(t, s, a.ID, "webhook deleted", last, hooks[1].ID, last-1, hooks[0].ID, t0.Add(time.Minute))
	storetest.CheckQueueAsCancelled(t, s, n)

	unlock()
	s.cancels.wg.Wait()
	if c := count(t, s, hooks[1].ID, store.StatusCancelled); c != n {
		t.Fatalf("%d deliveries of the deleted webhook cancelled once the cancelling is done, want %d", c, n)
	}
	if p := count(t, s, hooks[0].ID, store.StatusPending); p != n {
		t.Fatalf("the other webhook has %d pending deliveries, want %d", p, n)
	}
	if left := cancellationsLeft(t, s); left != 0 {
		t.Fatalf("%d deletions still recorded once their cancelling is done", left)
	}
}

// TestCloseLeavesDeletionToPrune: Close stops a delete's cancelling between two chunks; what is
// left still reads as cancelled, on another store too, and Prune drops the deletion's record
// only once none of its deliveries is pending.
func TestCloseLeavesDeletionToPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	const n = 3 * cancelChunk
	u, schema, s, a, hooks, first, unlock := deletionSetup(t, n, t0)
	if err := s.DeleteWebhook(ctx, a.ID, hooks[1].ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	storetest.CloseWhileCancelling(t, s, s.closing, unlock)

	other, err := Open(ctx, u, Options{Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pending := count(t, other, hooks[1].ID, store.StatusPending)
	if pending == 0 || pending+count(t, other, hooks[1].ID, store.StatusCancelled) != n {
		t.Fatalf("after Close, %d of the deleted webhook's %d deliveries pending, want some and none lost", pending, n)
	}
	last := first + 2*n - 1
	if d, _, err := other.GetDelivery(ctx, a.ID, last); err != nil || d.Status != store.StatusCancelled || !d.CompletedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("delivery %d of the deleted webhook reads %+v (%v) on another store, want it cancelled", last, d, err)
	}
	prune := func() {
		t.Helper()
		if _, err := other.Prune(ctx, store.PruneParams{Before: t0.Add(-time.Hour), IdempotencyBefore: t0.Add(-time.Hour), Limit: 100}); err != nil {
			t.Fatal(err)
		}
	}
	prune()
	if left := cancellationsLeft(t, other); left != 1 {
		t.Fatalf("Prune left %d deletions while deliveries of the webhook are pending, want 1", left)
	}
	// The engine cancels them as it claims them.
	if _, err := other.pool.Exec(ctx, `UPDATE deliveries SET status = 'cancelled', completed_at = now() WHERE webhook_id = $1 AND status = 'pending'`,
		hooks[1].ID); err != nil {
		t.Fatal(err)
	}
	prune()
	if left := cancellationsLeft(t, other); left != 0 {
		t.Fatalf("Prune left %d deletions with none of their deliveries pending, want 0", left)
	}
}

// TestDisableCancelsInBackground: a disable, by its owner (UpdateWebhook) or by the health
// monitor (UpdateHealth), returns before its webhook's deliveries are cancelled and holds no
// publish up meanwhile (cancelling a million in its transaction held a publish for 21 s); they
// read as cancelled at the disable's time from its return on, and enabling the webhook again
// waits for the cancelling and finishes it, so none of them is claimed after it, while what is
// published then is delivered.
func TestDisableCancelsInBackground(t *testing.T) {
	t.Parallel()
	t.Run("UpdateWebhook", func(t *testing.T) {
		t.Parallel()
		testDisableCancelsInBackground(t, "webhook disabled", func(s *Store, w store.Webhook, at time.Time) error {
			_, err := s.UpdateWebhook(context.Background(), w.AccountID, w.ID, func(w *store.Webhook) error {
				w.Status, w.UpdatedAt = store.WebhookDisabled, at
				return nil
			})
			return err
		})
	})
	t.Run("UpdateHealth", func(t *testing.T) {
		t.Parallel()
		testDisableCancelsInBackground(t, "webhook disabled: failing", func(s *Store, w store.Webhook, at time.Time) error {
			_, err := s.UpdateHealth(context.Background(), []int64{w.ID}, func(w *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
				w.Status, w.DisabledReason, w.UpdatedAt = store.WebhookDisabled, "failing", at
				return nil, nil
			})
			return err
		})
	})
}

func testDisableCancelsInBackground(t *testing.T, reason string, disable func(*Store, store.Webhook, time.Time) error) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	const n = 2*cancelChunk + 5
	_, _, s, a, hooks, first, unlock := deletionSetup(t, n, t0)
	defer s.Close()
	defer unlock()
	off := t0.Add(time.Minute)
	within := func(what string, fn func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return within 10 s while the cancelling was held back", what)
		}
	}
	publish := func(id string) error {
		_, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: id, AccountID: a.ID, Type: "message-send",
			Body: []byte(`{}`), CreatedAt: t0}}, IdempotencySince: t0.Add(-time.Hour)})
		return err
	}
	within("disable", func() error { return disable(s, hooks[1], off) })
	within("a publish to the disabled webhook's event", func() error { return publish("during") })
	if p := count(t, s, hooks[1].ID, store.StatusPending); p != n {
		t.Fatalf("%d deliveries of the disabled webhook pending in the database while its cancelling waits, want %d", p, n)
	}
	last := first + 2*n - 1
	storetest.CheckReadsAsCancelled(t, s, a.ID, reason, last, hooks[1].ID, last-1, hooks[0].ID, off)
	storetest.CheckQueueAsCancelled(t, s, n+1)

	enabled := make(chan error, 1)
	go func() {
		_, err := s.UpdateWebhook(ctx, a.ID, hooks[1].ID, func(w *store.Webhook) error {
			w.Status = store.WebhookActive
			return nil
		})
		enabled <- err
	}()
	select {
	case err := <-enabled:
		t.Fatalf("enabling returned (%v) before the disable's cancelling could finish", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	if err := <-enabled; err != nil {
		t.Fatal(err)
	}
	if c := count(t, s, hooks[1].ID, store.StatusCancelled); c != n+1 {
		t.Fatalf("%d deliveries of the webhook cancelled once it is enabled again, want %d", c, n+1)
	}
	if err := publish("after"); err != nil {
		t.Fatal(err)
	}
	storetest.CheckEnabledClaims(t, s, t0.Add(time.Hour), n+3, hooks[1].ID, "after")
	s.cancels.wg.Wait()
	if left := cancellationsLeft(t, s); left != 0 {
		t.Fatalf("%d cancellations still recorded once the webhook is enabled again", left)
	}
}

// TestOldNodesBesideMigration: during a rolling upgrade, nodes of the version before migration
// 00005 run beside it and use webhook_deletions, now a view of cancellations. A delete recorded
// the old way reads as cancelled on a new node, and the old cancelling (its statement as it
// was) cancels the deliveries and drops the record through the view; the old reads run.
func TestOldNodesBesideMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	const n = 10
	_, _, s, a, hooks, first, unlock := deletionSetup(t, n, t0)
	defer s.Close()
	unlock()
	gone := t0.Add(time.Minute)
	if _, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, hooks[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO webhook_deletions (webhook_id, deleted_at) VALUES ($1, $2)`, hooks[1].ID, gone); err != nil {
		t.Fatalf("an old node's record of a deletion: %v", err)
	}
	last := first + 2*n - 1
	storetest.CheckReadsAsCancelled(t, s, a.ID, "webhook deleted", last, hooks[1].ID, last-1, hooks[0].ID, gone)
	var seen *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT deleted_at FROM webhook_deletions w WHERE w.webhook_id = d.webhook_id)
		FROM deliveries d WHERE id = $1`, last).Scan(&seen); err != nil || seen == nil || !seen.Equal(gone) {
		t.Fatalf("an old node's read of delivery %d: deleted at %v (%v), want %v", last, seen, err, gone)
	}
	const oldChunk = `WITH c AS (
	SELECT id FROM deliveries WHERE webhook_id = $1 AND id > $2 ORDER BY id LIMIT $3
), cancelled AS (
	UPDATE deliveries d SET status = 'cancelled', completed_at = $4, next_attempt_at = NULL, lease_owner = NULL,
		last_error = 'webhook deleted'
	FROM c WHERE d.id = c.id AND d.status = 'pending'
), done AS (
	DELETE FROM webhook_deletions WHERE webhook_id = $1 AND NOT EXISTS (SELECT 1 FROM c)
)
SELECT max(id) FROM c`
	for after := int64(0); ; {
		var next *int64
		if err := s.pool.QueryRow(ctx, oldChunk, hooks[1].ID, after, 4, gone).Scan(&next); err != nil {
			t.Fatalf("an old node's cancelling: %v", err)
		}
		if next == nil {
			break
		}
		after = *next
	}
	if c := count(t, s, hooks[1].ID, store.StatusCancelled); c != n {
		t.Fatalf("%d deliveries of the deleted webhook cancelled by the old statement, want %d", c, n)
	}
	if left := cancellationsLeft(t, s); left != 0 {
		t.Fatalf("%d cancellations recorded once the old cancelling is done, want none", left)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM webhook_deletions w WHERE NOT EXISTS (SELECT 1 FROM deliveries d
		WHERE d.webhook_id = w.webhook_id AND d.status = 'pending')`); err != nil {
		t.Fatalf("an old node's prune: %v", err)
	}
}
