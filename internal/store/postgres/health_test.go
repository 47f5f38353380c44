package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
)

// Two nodes updating the health of the same webhooks at the same moment, each queueing an alert
// only when the state says none went out yet: the row locks make one wait for the other and
// then see its state, so every webhook ends with exactly one alert. The webhooks are passed in
// different orders, which would deadlock if they were not locked in id order.
func TestConcurrentUpdateHealth(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	nodes := []store.Store{openStore(t, u, schema), openStore(t, u, schema)}
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := nodes[0].CreateAccount(ctx, store.Account{Email: "health@acme.test", CreatedAt: now}, store.NewAPIKey{Prefix: "p", Hash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}

	const rounds, hooks, callers = 10, 4, 6 // callers per node
	for round := range rounds {
		ids := make([]int64, hooks)
		for i := range ids {
			w, err := nodes[0].CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com", Secret: "s", CreatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = w.ID
		}
		update := func(w *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
			w.ConsecutiveFailures++
			if st.Alerting {
				st.Pending++
				return nil, nil
			}
			// Give a concurrent caller every chance to read the same state, were it not locked.
			time.Sleep(2 * time.Millisecond)
			st.Alerting, st.LastAlertAt = true, now
			return []store.Alert{{AccountID: w.AccountID, WebhookID: w.ID, Kind: store.AlertFailing, Recipient: "ops@acme.test",
				URL: w.URL, Event: w.Event, Failures: 1, State: store.AlertPending, NextTryAt: now, CreatedAt: now}}, nil
		}
		start := make(chan struct{})
		errs := make(chan error, len(nodes)*callers)
		var wg sync.WaitGroup
		for n, s := range nodes {
			for c := range callers {
				order := slices.Clone(ids)
				if (n+c)%2 == 1 {
					slices.Reverse(order)
				}
				wg.Go(func() {
					<-start
					if _, err := s.UpdateHealth(ctx, order, update); err != nil {
						errs <- fmt.Errorf("node %d, caller %d: %w", n, c, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: UpdateHealth: %v", round, err)
		}
		for _, id := range ids {
			_, total, err := nodes[1].ListAlerts(ctx, a.ID, id, store.Page{Size: 10})
			if err != nil {
				t.Fatal(err)
			}
			if total != 1 {
				t.Fatalf("round %d: webhook %d has %d alerts, want exactly one", round, id, total)
			}
			w, err := nodes[1].GetWebhook(ctx, a.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			// Every call's update was applied on top of the one before: none was lost.
			if w.ConsecutiveFailures != len(nodes)*callers {
				t.Fatalf("round %d: webhook %d has %d failures, want %d", round, id, w.ConsecutiveFailures, len(nodes)*callers)
			}
		}
	}
}

// Publish and a disabling UpdateHealth or UpdateWebhook racing from two nodes: once both have
// returned, no pending delivery of the webhooks is left, whichever committed first (publishes
// that read a webhook as disabled store theirs as cancelled). UpdateHealth disables several
// webhooks that every publish fans out to, which would deadlock if the publish and the disable
// did not lock the webhooks in the same order.
func TestDisableDuringPublish(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	s1 := openStore(t, u, schema)
	s2 := openStore(t, u, schema)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := s1.CreateAccount(ctx, store.Account{Email: "race-disable@acme.test", CreatedAt: now}, store.NewAPIKey{Prefix: "p", Hash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	disable := map[string]func(ws []store.Webhook) error{
		"UpdateHealth": func(ws []store.Webhook) error {
			ids := make([]int64, len(ws))
			for i, w := range ws {
				ids[i] = w.ID
			}
			changed, err := s2.UpdateHealth(ctx, ids, func(x *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
				x.Status, x.DisabledReason, x.UpdatedAt = store.WebhookDisabled, "too many failures", now.Add(time.Minute)
				return nil, nil
			})
			if err == nil && len(changed) != len(ws) {
				err = fmt.Errorf("%d webhooks changed, want %d", len(changed), len(ws))
			}
			return err
		},
		"UpdateWebhook": func(ws []store.Webhook) error {
			for _, w := range ws {
				_, err := s2.UpdateWebhook(ctx, a.ID, w.ID, func(x *store.Webhook) error {
					x.Status, x.DisabledReason, x.UpdatedAt = store.WebhookDisabled, "disabled by its owner", now.Add(time.Minute)
					return nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, disable := range disable {
		for round := range 20 {
			event := fmt.Sprintf("%s-%d", name, round)
			ws := make([]store.Webhook, 3)
			for i := range ws {
				if ws[i], err = s1.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "new", URL: "https://example.com", Secret: "s", CreatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			// Moved to the event in reverse order, so their new row versions (and index entries)
			// are in the reverse order of their ids, as updates leave them in production: a
			// publish scanning them in index order meets them in that order.
			for i := len(ws) - 1; i >= 0; i-- {
				if ws[i], err = s1.UpdateWebhook(ctx, a.ID, ws[i].ID, func(x *store.Webhook) error { x.Event = event; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			var perr, derr error
			wg.Go(func() {
				<-start
				for i := range 5 {
					events := make([]store.NewEvent, 20)
					for j := range events {
						events[j] = store.NewEvent{ID: fmt.Sprintf("%s-%d-%d", event, i, j), AccountID: a.ID, Type: event, Body: []byte(`{}`), CreatedAt: now}
					}
					if _, err := s1.Publish(ctx, store.PublishParams{Events: events}); err != nil {
						perr = err
						return
					}
				}
			})
			wg.Go(func() {
				<-start
				time.Sleep(time.Duration(round%4) * time.Millisecond)
				derr = disable(ws)
			})
			close(start)
			wg.Wait()
			if perr != nil || derr != nil {
				t.Fatalf("%s, round %d: publish %v, disable %v", name, round, perr, derr)
			}
			for _, w := range ws {
				if _, n, err := s1.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{Status: store.StatusPending}, store.Page{Size: 1}); err != nil || n != 0 {
					t.Fatalf("%s, round %d: %d pending deliveries of disabled webhook %d (%v)", name, round, n, w.ID, err)
				}
			}
		}
	}
}
