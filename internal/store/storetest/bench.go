package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// The benchmarks every driver runs with the same code, so their figures compare: batches of
// BenchEvents events, each fanned out to BenchWebhooks webhooks, reported as deliveries/s.
const (
	BenchEvents   = 100
	BenchWebhooks = 2
)

// benchBody is the body of the benchmarks' events: an SMS message sent.
var benchBody = []byte(`{"messageId":123456,"destinationNumber":"+15555550100","message":"Your code is 4242","tags":{"campaign":"bench"}}`)

// benchSetup creates an account with BenchWebhooks webhooks for one event type. publish stores
// one batch; with owner set, its deliveries are leased to owner, as the engine takes them.
func benchSetup(b *testing.B, s store.Store) (publish func(at time.Time)) {
	return benchSetupLeased(b, s, "")
}

func benchSetupLeased(b *testing.B, s store.Store, owner string) (publish func(at time.Time)) {
	b.Helper()
	ctx := context.Background()
	a := benchAccount(b, s)
	for range BenchWebhooks {
		benchWebhook(b, s, a.ID, "message-send")
	}
	prefix := fmt.Sprintf("bench-%d-", time.Now().UnixNano())
	seq := 0
	events := make([]store.NewEvent, BenchEvents)
	return func(at time.Time) {
		for i := range events {
			seq++
			events[i] = store.NewEvent{ID: prefix + fmt.Sprint(seq), AccountID: a.ID, Type: "message-send", Body: benchBody, CreatedAt: at}
		}
		p := store.PublishParams{Events: events, IdempotencySince: at.Add(-24 * time.Hour)}
		if owner != "" {
			p.Owner, p.LeaseUntil = owner, at.Add(time.Minute)
		}
		res, err := s.Publish(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.Deliveries != BenchWebhooks {
				b.Fatalf("publish result %+v", r)
			}
		}
	}
}

// BenchPublish measures Publish: one batch of BenchEvents events per iteration.
func BenchPublish(b *testing.B, s store.Store) { benchPublish(b, s, "") }

// BenchPublishLeased measures Publish as the delivery engine's publisher makes it: the
// deliveries are leased to the engine as they are stored.
func BenchPublishLeased(b *testing.B, s store.Store) { benchPublish(b, s, "bench") }

func benchPublish(b *testing.B, s store.Store, owner string) {
	publish := benchSetupLeased(b, s, owner)
	n := 0
	for b.Loop() {
		publish(t0)
		n += BenchEvents * BenchWebhooks
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchClaimComplete measures the delivery engine's side of the queue: claiming a batch of due
// deliveries and recording their outcomes (a successful attempt each). Each iteration publishes
// one batch with the timer stopped, then claims and completes all of its deliveries.
func BenchClaimComplete(b *testing.B, s store.Store) {
	ctx := context.Background()
	publish := benchSetup(b, s)
	const perBatch = BenchEvents * BenchWebhooks
	outcomes := make([]store.Outcome, 0, perBatch)
	n := 0
	for b.Loop() {
		b.StopTimer()
		publish(t0)
		b.StartTimer()
		now := t0.Add(time.Second)
		jobs, err := s.Claim(ctx, store.ClaimParams{Owner: "bench", Now: now, Limit: perBatch, LeaseUntil: now.Add(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) != perBatch {
			b.Fatalf("claimed %d deliveries, want %d", len(jobs), perBatch)
		}
		outcomes = outcomes[:0]
		for _, j := range jobs {
			outcomes = append(outcomes, store.Outcome{DeliveryID: j.DeliveryID, Owner: "bench", Status: store.StatusSucceeded, At: now,
				Attempt: &store.Attempt{Attempt: j.Attempts + 1, At: now, StatusCode: 200, DurationMs: 3, ResponseBody: "ok"}})
		}
		if err := s.Complete(ctx, outcomes); err != nil {
			b.Fatal(err)
		}
		n += len(jobs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchClaimSpread measures Claim where the deliveries of a claim go to many webhooks, as in
// the bench's scale scenario (10,000 webhooks): each iteration publishes one event to each of
// 250 accounts with 4 webhooks each (with the timer stopped), then claims the 1,000 deliveries,
// one per webhook, and records their outcomes.
func BenchClaimSpread(b *testing.B, s store.Store) {
	ctx := context.Background()
	const accounts, perAccount = 250, 4
	ids := make([]int64, accounts)
	for i := range ids {
		ids[i] = benchAccount(b, s).ID
		for range perAccount {
			benchWebhook(b, s, ids[i], "message-send")
		}
	}
	events := make([]store.NewEvent, accounts)
	outcomes := make([]store.Outcome, 0, accounts*perAccount)
	seq, n := 0, 0
	for b.Loop() {
		b.StopTimer()
		for i := range events {
			seq++
			events[i] = store.NewEvent{ID: fmt.Sprintf("spread-%d-%d", t0.UnixNano(), seq), AccountID: ids[i], Type: "message-send", Body: benchBody, CreatedAt: t0}
		}
		if _, err := s.Publish(ctx, store.PublishParams{Events: events, IdempotencySince: t0.Add(-24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		now := t0.Add(time.Second)
		jobs, err := s.Claim(ctx, store.ClaimParams{Owner: "bench", Now: now, Limit: accounts * perAccount, LeaseUntil: now.Add(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) != accounts*perAccount {
			b.Fatalf("claimed %d deliveries, want %d", len(jobs), accounts*perAccount)
		}
		b.StopTimer()
		outcomes = outcomes[:0]
		for _, j := range jobs {
			if j.WebhookVersion == 0 {
				b.Fatalf("delivery %d: no webhook version", j.DeliveryID)
			}
			outcomes = append(outcomes, store.Outcome{DeliveryID: j.DeliveryID, Owner: "bench", Status: store.StatusSucceeded, At: now,
				Attempt: &store.Attempt{Attempt: 1, At: now, StatusCode: 200, DurationMs: 3, ResponseBody: "ok"}})
		}
		if err := s.Complete(ctx, outcomes); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n += len(jobs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchWebhookByID measures WebhookByID, which the delivery engine calls once for each webhook
// it has not seen: with thousands of webhooks it runs as often as deliveries start.
func BenchWebhookByID(b *testing.B, s store.Store) {
	ctx := context.Background()
	a := benchAccount(b, s)
	ids := make([]int64, 100)
	for i := range ids {
		ids[i] = benchWebhook(b, s, a.ID, "message-send").ID
	}
	i := 0
	for b.Loop() {
		if _, err := s.WebhookByID(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchListDeliveries measures listing a webhook's deliveries among 100,000 (two webhooks
// sharing 50,000 events) with its total: the first page of a busy webhook, its 200th, and the
// only page of a webhook with five deliveries spread among the others.
func BenchListDeliveries(b *testing.B, s store.Store) {
	ctx := context.Background()
	a := benchAccount(b, s)
	busy := benchWebhook(b, s, a.ID, "message-send")
	benchWebhook(b, s, a.ID, "message-send")
	rare := benchWebhook(b, s, a.ID, "number-opt-in")
	for batch := range 500 {
		events := make([]store.NewEvent, 100)
		for i := range events {
			typ := "message-send"
			if i == 0 && batch%100 == 0 {
				typ = "number-opt-in"
			}
			events[i] = store.NewEvent{ID: fmt.Sprintf("list-%d-%d-%d", t0.UnixNano(), batch, i), AccountID: a.ID, Type: typ, Body: []byte(`{}`), CreatedAt: t0}
		}
		if _, err := s.Publish(ctx, store.PublishParams{Events: events, IdempotencySince: t0.Add(-24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name    string
		webhook int64
		page    store.Page
		n       int
	}{
		{"busy-first", busy.ID, store.Page{Size: 25}, 25},
		{"busy-200th", busy.ID, store.Page{Page: 199, Size: 25}, 25},
		{"rare", rare.ID, store.Page{Size: 25}, 5},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				list, _, err := s.ListDeliveries(ctx, a.ID, c.webhook, store.DeliveryFilter{}, c.page)
				if err != nil || len(list) != c.n {
					b.Fatalf("listed %d deliveries (%v), want %d", len(list), err, c.n)
				}
			}
		})
	}
}

// BenchUpdateHealth measures the alert monitor's flush of 2,000 webhooks that each had a
// successful attempt since the last one: the health every webhook with attempts gets written,
// every second.
func BenchUpdateHealth(b *testing.B, s store.Store) {
	ctx := context.Background()
	a := benchAccount(b, s)
	ids := make([]int64, 2000)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for c := range 16 { // 16 at a time: the writer commits them together
		wg.Go(func() {
			for i := c; i < len(ids); i += 16 {
				var w store.Webhook
				w, errs[i] = s.CreateWebhook(ctx, webhookFor(a.ID, "message-send"))
				ids[i] = w.ID
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	at := t0
	for b.Loop() {
		at = at.Add(time.Millisecond)
		n := 0
		_, err := s.UpdateHealth(ctx, ids, func(w *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
			w.LastDeliveryAt, w.LastSuccessAt = at, at
			n++
			return nil, nil
		})
		if err != nil || n != len(ids) {
			b.Fatalf("updated %d webhooks (%v), want %d", n, err, len(ids))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/webhook")
}

// benchAccount creates an account of the benchmark's own.
func benchAccount(b *testing.B, s store.Store) store.Account {
	b.Helper()
	a, _, err := s.CreateAccount(context.Background(), store.Account{Email: fmt.Sprintf("bench-%d@acme.test", time.Now().UnixNano()),
		Name: "Bench", CreatedAt: t0}, newKey())
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// benchWebhook creates a webhook of the account for the event type.
func benchWebhook(b *testing.B, s store.Store, accountID int64, event string) store.Webhook {
	b.Helper()
	w, err := s.CreateWebhook(context.Background(), webhookFor(accountID, event))
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchEventBodies measures EventBodies as the delivery engine calls it for the deliveries of
// a claim, which carry no bodies: 500 events at a time, published one after the other, among
// 50,000. Reported per event.
func BenchEventBodies(b *testing.B, s store.Store) {
	ctx := context.Background()
	a := benchAccount(b, s)
	benchWebhook(b, s, a.ID, "message-send")
	const perCall = 500
	ids := make([]string, 0, 50_000)
	for batch := range cap(ids) / BenchEvents {
		events := make([]store.NewEvent, BenchEvents)
		for i := range events {
			events[i] = store.NewEvent{ID: fmt.Sprintf("bodies-%d-%d-%d", t0.UnixNano(), batch, i), AccountID: a.ID, Type: "message-send", Body: benchBody, CreatedAt: t0}
			ids = append(ids, events[i].ID)
		}
		if _, err := s.Publish(ctx, store.PublishParams{Events: events, IdempotencySince: t0.Add(-24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	n, from := 0, 0
	for b.Loop() {
		chunk := ids[from : from+perCall]
		from = (from + perCall) % len(ids)
		bodies, err := s.EventBodies(ctx, chunk)
		if err != nil {
			b.Fatal(err)
		}
		if len(bodies) != perCall || string(bodies[chunk[0]]) != string(benchBody) {
			b.Fatalf("read %d bodies, want %d with the published body", len(bodies), perCall)
		}
		n += perCall
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
