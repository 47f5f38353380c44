package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// CheckReadsAsDeleted checks what GetDelivery shows while a deleted webhook's pending
// deliveries are still being cancelled, after DeleteWebhook returned: delivery deleted, of
// webhook deletedHook, reads as cancelled at, the delete's time, with the delete's reason;
// delivery kept, pending, of webhook keptHook, reads as pending. Drivers that cancel behind the
// delete call it from their own tests, each holding its cancelling back its own way.
func CheckReadsAsDeleted(t *testing.T, s store.Store, accountID, deleted, deletedHook, kept, keptHook int64, at time.Time) {
	t.Helper()
	ctx := context.Background()
	d, _, err := s.GetDelivery(ctx, accountID, deleted)
	if err != nil {
		t.Fatal(err)
	}
	if d.WebhookID != deletedHook || d.Status != store.StatusCancelled || d.LastError != "webhook deleted" ||
		!d.CompletedAt.Equal(at) || !d.NextAttemptAt.IsZero() {
		t.Fatalf("delivery %d of the deleted webhook reads %+v, want it cancelled when the webhook was deleted", deleted, d)
	}
	if d, _, err := s.GetDelivery(ctx, accountID, kept); err != nil || d.WebhookID != keptHook || d.Status != store.StatusPending {
		t.Fatalf("delivery %d of the other webhook reads %+v (%v), want it pending", kept, d, err)
	}
}

// CheckQueueAsDeleted checks that QueueStats leaves out the pending deliveries of a deleted
// webhook still being cancelled: due deliveries counted are want, those of the other webhooks.
func CheckQueueAsDeleted(t *testing.T, s store.Store, want int) {
	t.Helper()
	q, err := s.QueueStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if q.Due != want || q.Scheduled != 0 {
		t.Fatalf("queue stats %+v while a deleted webhook's deliveries are cancelled, want %d due (the other webhook's), none scheduled", q, want)
	}
}

// CloseWhileCancelling closes s while a deleted webhook's cancelling is held back: once
// closing reports that Close has begun, it lets the cancelling go on by calling release, and
// Close must then stop it and return within 10 s.
func CloseWhileCancelling(t *testing.T, s store.Store, closing func() bool, release func()) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for deadline := time.Now().Add(10 * time.Second); !closing(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Close did not begin within 10 s")
		}
	}
	release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s of a delete's cancelling in the background")
	}
}
