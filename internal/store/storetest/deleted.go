package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// CheckReadsAsCancelled checks what reads show while the pending deliveries of a webhook deleted
// or disabled are still being cancelled, after the change returned: delivery gone, of webhook
// goneHook, reads as cancelled at, the change's time, with reason ("webhook deleted", "webhook
// disabled"), and ListDeliveries counts it as cancelled, not pending; delivery kept, pending, of
// webhook keptHook, reads as pending. Drivers that cancel behind the change call it from their
// own tests, each holding its cancelling back its own way.
func CheckReadsAsCancelled(t *testing.T, s store.Store, accountID int64, reason string, gone, goneHook, kept, keptHook int64, at time.Time) {
	t.Helper()
	ctx := context.Background()
	d, _, err := s.GetDelivery(ctx, accountID, gone)
	if err != nil {
		t.Fatal(err)
	}
	if d.WebhookID != goneHook || d.Status != store.StatusCancelled || d.LastError != reason ||
		!d.CompletedAt.Equal(at) || !d.NextAttemptAt.IsZero() {
		t.Fatalf("delivery %d of the webhook whose deliveries are being cancelled reads %+v, want it cancelled at %v: %s", gone, d, at, reason)
	}
	if d, _, err := s.GetDelivery(ctx, accountID, kept); err != nil || d.WebhookID != keptHook || d.Status != store.StatusPending {
		t.Fatalf("delivery %d of the other webhook reads %+v (%v), want it pending", kept, d, err)
	}
	if reason == "webhook deleted" {
		return // no listing by a webhook that is gone
	}
	list, total, err := s.ListDeliveries(ctx, accountID, goneHook, store.DeliveryFilter{Status: store.StatusPending}, store.Page{Size: 10})
	if err != nil || total != 0 || len(list) != 0 {
		t.Fatalf("pending deliveries of the webhook whose deliveries are being cancelled: %d listed of %d (%v), want none", len(list), total, err)
	}
	list, _, err = s.ListDeliveries(ctx, accountID, goneHook, store.DeliveryFilter{Status: store.StatusCancelled}, store.Page{Size: 10})
	if err != nil || !slices.ContainsFunc(list, func(d store.Delivery) bool { return d.ID == gone && d.LastError == reason }) {
		t.Fatalf("cancelled deliveries of the webhook whose deliveries are being cancelled: %+v (%v), want delivery %d among them", list, err, gone)
	}
}

// CheckQueueAsCancelled checks that QueueStats leaves out the pending deliveries of a webhook
// deleted or disabled that are still being cancelled: due deliveries counted are want, those of
// the other webhooks.
func CheckQueueAsCancelled(t *testing.T, s store.Store, want int) {
	t.Helper()
	q, err := s.QueueStats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if q.Due != want || q.Scheduled != 0 {
		t.Fatalf("queue stats %+v while a webhook's deliveries are cancelled, want %d due (the other webhooks'), none scheduled", q, want)
	}
}

// CheckEnabledClaims claims every delivery due at now and checks that they are want in all,
// and that of webhook hook, enabled again after a disable, only event's is among them: none of
// those its disable covered.
func CheckEnabledClaims(t *testing.T, s store.Store, now time.Time, want int, hook int64, event string) {
	t.Helper()
	jobs, err := s.Claim(context.Background(), store.ClaimParams{Owner: "n", Now: now, Limit: 2 * want, LeaseUntil: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var mine []store.Job
	for _, j := range jobs {
		if j.WebhookID == hook {
			mine = append(mine, j)
		}
	}
	if len(jobs) != want || len(mine) != 1 || mine[0].EventID != event {
		t.Fatalf("claimed %d deliveries, of them %+v of the webhook enabled again; want %d, and of the webhook only event %s's", len(jobs), mine, want, event)
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
