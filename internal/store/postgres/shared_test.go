package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
)

func TestListenHearsOtherNodes(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	a, b := openStore(t, u, schema), openStore(t, u, schema)
	elsewhere := openStore(t, u, pgtest.NewSchema(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan store.Change, 16)
	listening := make(chan error, 1)
	go func() { listening <- a.Listen(ctx, func(c store.Change) { changes <- c }) }()
	time.Sleep(200 * time.Millisecond) // let LISTEN take effect

	acct, _, err := b.CreateAccount(ctx, store.Account{Email: "l@acme.test", CreatedAt: time.Now()}, store.NewAPIKey{Prefix: "p", Hash: []byte("h1")})
	if err != nil {
		t.Fatal(err)
	}
	w, err := b.CreateWebhook(ctx, store.Webhook{AccountID: acct.ID, Event: "message-send", URL: "https://example.com", Secret: "s",
		RetryOnError: true, MaxThroughputPerMinute: 60, Status: store.WebhookActive, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// Another schema's changes are not heard.
	acct2, _, err := elsewhere.CreateAccount(ctx, store.Account{Email: "x@acme.test", CreatedAt: time.Now()}, store.NewAPIKey{Prefix: "p", Hash: []byte("h2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.CreateWebhook(ctx, store.Webhook{AccountID: acct2.ID, Event: "message-send", URL: "https://example.com", Secret: "s",
		MaxThroughputPerMinute: 60, Status: store.WebhookActive, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: "e-else", AccountID: acct2.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, store.PublishParams{Events: []store.NewEvent{{ID: "e-1", AccountID: acct.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateWebhook(ctx, acct.ID, w.ID, func(x *store.Webhook) error { x.URL = "https://example.org"; return nil }); err != nil {
		t.Fatal(err)
	}
	want := []store.Change{{Due: true}, {WebhookID: w.ID}}
	for i, wc := range want {
		select {
		case c := <-changes:
			if c != wc {
				t.Fatalf("change %d = %+v, want %+v", i, c, wc)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("change %d (%+v) not heard", i, wc)
		}
	}
	select {
	case c := <-changes:
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-listening; err != nil {
		t.Fatalf("Listen after cancel: %v", err)
	}
}

func TestTakeSlotsAcrossNodes(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	nodes := []*openedStore{{s: openStore(t, u, schema)}, {s: openStore(t, u, schema)}, {s: openStore(t, u, schema)}}
	ctx := context.Background()
	const limit, hook = 10, int64(42)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			for range 10 {
				g, err := n.s.TakeSlots(ctx, []store.SlotRequest{{WebhookID: hook, Limit: limit, Want: 3, ValidFor: time.Minute},
					{WebhookID: 7, Limit: 1000, Want: 1, ValidFor: time.Minute}})
				if err != nil {
					t.Error(err)
					return
				}
				if g[0].WebhookID != hook || g[1].WebhookID != 7 || g[1].Granted != 1 {
					t.Errorf("grants out of order or short: %+v", g)
				}
				granted.Add(int64(g[0].Granted))
				// now() is the transaction's start: a grant another node made while this
				// transaction waited for the webhook's lock ends that wait after a minute
				// from this one's now (a CI run saw 1m0.000063s).
				if g[0].Granted == 0 && (g[0].RetryIn <= 0 || g[0].RetryIn > time.Minute+10*time.Second) {
					t.Errorf("nothing granted, retry in %v", g[0].RetryIn)
				}
				n.mu.Lock()
				n.grants = append(n.grants, g[0])
				n.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := granted.Load(); got != limit {
		t.Fatalf("three nodes were granted %d slots of a window of %d", got, limit)
	}
	// Settling with fewer used gives the rest back at once; settling used ones for a short
	// while frees them when that ends.
	var settles []store.SlotSettle
	for _, n := range nodes {
		for _, g := range n.grants {
			if g.ID != 0 {
				settles = append(settles, store.SlotSettle{ID: g.ID, Used: 1, ValidFor: 500 * time.Millisecond})
			}
		}
	}
	if err := nodes[0].s.SettleSlots(ctx, settles); err != nil {
		t.Fatal(err)
	}
	g, err := nodes[1].s.TakeSlots(ctx, []store.SlotRequest{{WebhookID: hook, Limit: limit, Want: 100, ValidFor: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if want := limit - len(settles); g[0].Granted != want {
		t.Fatalf("after settling %d grants with 1 used each: granted %d, want %d", len(settles), g[0].Granted, want)
	}
	if err := nodes[1].s.SettleSlots(ctx, []store.SlotSettle{{ID: g[0].ID, Used: 0}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	g, err = nodes[2].s.TakeSlots(ctx, []store.SlotRequest{{WebhookID: hook, Limit: limit, Want: 100, ValidFor: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if g[0].Granted != limit {
		t.Fatalf("after the settled slots ended: granted %d, want the whole window %d", g[0].Granted, limit)
	}
}

type openedStore struct {
	s interface {
		store.Shared
	}
	mu     sync.Mutex
	grants []store.SlotGrant
}
