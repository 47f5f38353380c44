package postgres_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/postgres"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

func openStore(t testing.TB, u, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), u, postgres.Options{Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("open store in schema %s: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	u := pgtest.DatabaseURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, u, pgtest.NewSchema(t))
	})
}

// Migrate applies the migrations to the schema the URL's search_path names, once.
func TestMigrate(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	q.Set("search_path", schema)
	parsed.RawQuery = q.Encode()
	for range 2 {
		if err := postgres.Migrate(ctx, parsed.String(), nil); err != nil {
			t.Fatal(err)
		}
	}
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 10 { // nine of ours and goose's version table
		t.Fatalf("schema %s has %d tables after Migrate, want 10", schema, tables)
	}
}

// Several nodes starting at once all migrate the same schema: one applies the migrations under
// the session lock, the others wait and find nothing left to do.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	const nodes = 3
	stores := make([]*postgres.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(context.Background(), u, postgres.Options{Schema: schema, MaxConns: 4})
		})
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: open: %v", i, errs[i])
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	migrations := len(files)
	var applied, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM `+pgx.Identifier{schema, "goose_db_version"}.Sanitize()+
		` WHERE version_id > 0`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != migrations || distinct != migrations {
		t.Fatalf("%d migrations applied %d times, want %d once each", distinct, applied, migrations)
	}
	// Every node works on the same tables.
	a, _, err := stores[0].CreateAccount(ctx, store.Account{Email: "m@acme.test", CreatedAt: time.Now()}, store.NewAPIKey{Prefix: "p", Hash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.GetAccount(ctx, a.ID); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// Two nodes publishing the same idempotency keys at the same moment store one event per key:
// the other sees the first as a duplicate, and only the first event has deliveries.
func TestConcurrentIdempotentPublish(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	s1 := openStore(t, u, schema)
	s2 := openStore(t, u, schema)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := s1.CreateAccount(ctx, store.Account{Email: "idem@acme.test", CreatedAt: now}, store.NewAPIKey{Prefix: "p", Hash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s1.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com", Secret: "s", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}

	const rounds, keys = 20, 10
	var seq int
	batch := func(node string, round int, reverse bool) []store.NewEvent {
		events := make([]store.NewEvent, keys)
		for i := range keys {
			seq++
			k := i
			if reverse {
				k = keys - 1 - i
			}
			events[i] = store.NewEvent{ID: fmt.Sprintf("%s-%d-%d", node, round, seq), AccountID: a.ID, Type: "message-send",
				Body: []byte(`{}`), IdempotencyKey: fmt.Sprintf("key-%d-%d", round, k), CreatedAt: now}
		}
		return events
	}
	stored := 0
	for round := range rounds {
		// The two nodes publish the same keys in opposite orders, the case that would deadlock
		// if inserts did not take keys in one order.
		b1, b2 := batch("n1", round, false), batch("n2", round, true)
		var r1, r2 []store.Published
		var e1, e2 error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			r1, e1 = s1.Publish(ctx, store.PublishParams{Events: b1, IdempotencySince: now.Add(-time.Hour)})
		})
		wg.Go(func() {
			<-start
			r2, e2 = s2.Publish(ctx, store.PublishParams{Events: b2, IdempotencySince: now.Add(-time.Hour)})
		})
		close(start)
		wg.Wait()
		if e1 != nil || e2 != nil {
			t.Fatalf("round %d: publish: %v, %v", round, e1, e2)
		}
		byKey := map[string][]store.Published{}
		for i, r := range r1 {
			byKey[b1[i].IdempotencyKey] = append(byKey[b1[i].IdempotencyKey], r)
		}
		for i, r := range r2 {
			byKey[b2[i].IdempotencyKey] = append(byKey[b2[i].IdempotencyKey], r)
		}
		for k, rs := range byKey {
			if len(rs) != 2 || rs[0].EventID != rs[1].EventID || rs[0].Duplicate == rs[1].Duplicate || rs[0].Deliveries != 1 || rs[1].Deliveries != 1 {
				t.Fatalf("round %d, key %s: results %+v, want one event, one duplicate of it", round, k, rs)
			}
		}
		ids := make([]string, 0, 2*keys)
		for _, e := range append(b1, b2...) {
			ids = append(ids, e.ID)
		}
		bodies, err := s1.EventBodies(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(bodies) != keys {
			t.Fatalf("round %d: %d events stored for %d keys", round, len(bodies), keys)
		}
		stored += keys
	}
	if _, total, err := s2.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 1}); err != nil || total != stored {
		t.Fatalf("deliveries = %d, %v; want %d (one per stored event)", total, err, stored)
	}
}

// Publish and DeleteWebhook racing from two nodes: once the delete has returned, no pending
// delivery of the webhook is left, whichever committed first.
func TestDeleteWebhookDuringPublish(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	s1 := openStore(t, u, schema)
	s2 := openStore(t, u, schema)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, _, err := s1.CreateAccount(ctx, store.Account{Email: "race@acme.test", CreatedAt: now}, store.NewAPIKey{Prefix: "p", Hash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		w, err := s1.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com", Secret: "s", CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		var perr, derr error
		wg.Go(func() {
			<-start
			for i := range 5 {
				events := make([]store.NewEvent, 20)
				for j := range events {
					events[j] = store.NewEvent{ID: fmt.Sprintf("race-%d-%d-%d", round, i, j), AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: now}
				}
				if _, err := s1.Publish(ctx, store.PublishParams{Events: events}); err != nil {
					perr = err
					return
				}
			}
		})
		wg.Go(func() {
			<-start
			derr = s2.DeleteWebhook(ctx, a.ID, w.ID, now)
		})
		close(start)
		wg.Wait()
		if perr != nil || derr != nil {
			t.Fatalf("round %d: publish %v, delete %v", round, perr, derr)
		}
		// Publishes that ran after the delete found no webhook; those before had theirs cancelled.
		if _, n, err := s1.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{Status: store.StatusPending}, store.Page{Size: 1}); err != nil || n != 0 {
			t.Fatalf("round %d: %d pending deliveries of a deleted webhook (%v)", round, n, err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: Open fails instead of hanging.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = postgres.Open(context.Background(), "postgres://postgres@"+addr+"/test?sslmode=disable", postgres.Options{})
	if err == nil {
		t.Fatal("Open of an unreachable database succeeded")
	}
}

// When the database goes away, Ping reports an error by itself rather than waiting on the
// caller's context: whether its connections are cut and new ones refused, or new connections
// are accepted and never served, as behind a dead route.
func TestPingFailsFast(t *testing.T) {
	t.Parallel()
	u := pgtest.DatabaseURL(t)
	schema := pgtest.NewSchema(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, parsed.Host)
	parsed.Host = p.addr
	s, err := postgres.Open(context.Background(), parsed.String(), postgres.Options{Schema: schema, PingTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Refuse connections before closing: pgx closes a broken connection by sending a
		// cancel request, which would wait on the black hole.
		p.cut()
		s.Close()
	}()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping through the proxy: %v", err)
	}
	p.cut()
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded with the connections cut")
	}
	p.blackhole(t)
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded with the database not answering")
	}
}

// proxy forwards TCP connections to the database. cut closes them all and refuses new ones;
// blackhole then accepts connections again on the same address and never answers them.
type proxy struct {
	addr   string
	target string
	mu     sync.Mutex
	l      net.Listener
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String(), target: target, l: l}
	t.Cleanup(p.cut)
	go p.serve(l, true)
	return p
}

func (p *proxy) serve(l net.Listener, forward bool) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if !forward {
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(up)
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) blackhole(t *testing.T) {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go p.serve(l, false)
}
