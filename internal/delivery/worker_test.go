package delivery

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
)

// TestWorkers: attempts run on workers that are kept between attempts, never more of them
// than Concurrency, all of it used; when Run returns, no worker is left.
func TestWorkers(t *testing.T) {
	const concurrency, events = 8, 1000
	var maxInFlight int
	receiver := newHoldingReceiver(t, func(int) time.Duration { return 2 * time.Millisecond },
		func(inFlight, _ int) { maxInFlight = max(maxInFlight, inFlight) })

	st := openStore(t)
	publishEvents(t, st, createWebhook(t, st, receiver.URL), events)

	e := New(Config{Store: st, Owner: "workers", AllowPrivate: true, Concurrency: concurrency,
		WebhookConcurrency: concurrency, PollInterval: 10 * time.Millisecond})
	e.cpu = func() (time.Duration, bool) { return 0, true } // the CPU free: the limits grow to Concurrency
	stop := runEngine(t, e)
	receiver.waitAnswered(t, events, 30*time.Second)
	e.mu.Lock()
	workers := e.workers
	e.mu.Unlock()
	if workers < 1 || workers > concurrency {
		t.Errorf("%d workers made %d attempts with Concurrency %d", workers, events, concurrency)
	}
	receiver.mu.Lock()
	defer receiver.mu.Unlock()
	if maxInFlight != concurrency {
		t.Errorf("at most %d attempts were in flight at once, want Concurrency (%d)", maxInFlight, concurrency)
	}

	stop()
	stacks := func() string {
		buf := make([]byte, 1<<20)
		return string(buf[:runtime.Stack(buf, true)])
	}
	eventually(t, 5*time.Second, func() bool { return !strings.Contains(stacks(), "delivery.(*Engine).worker") },
		func() string { return "a worker is still running after Run returned:\n" + stacks() })
}

// TestRunClosesIdleConnections: when Run returns, the engine's connections to receivers are
// closed, not left open until they time out (90 s): a process that starts engines one after
// another (the bench's runs) kept every earlier engine's connections, and their goroutines
// and buffers, to receivers that outlived them.
func TestRunClosesIdleConnections(t *testing.T) {
	receiver := unstartedHoldingReceiver(func(int) time.Duration { return 0 }, nil)
	conns := countConns(receiver.Server)
	receiver.Start()
	t.Cleanup(receiver.Close)

	st := openStore(t)
	publishEvents(t, st, createWebhook(t, st, receiver.URL), 200)
	e := New(Config{Store: st, Owner: "idle", AllowPrivate: true, Concurrency: 8, WebhookConcurrency: 8,
		PollInterval: 10 * time.Millisecond})
	stop := runEngine(t, e)
	receiver.waitAnswered(t, 200, 30*time.Second)
	if n, _ := conns(); n == 0 {
		t.Fatal("no connection open to the receiver after the deliveries: nothing to check")
	}
	stop()
	eventually(t, 5*time.Second, func() bool { n, _ := conns(); return n == 0 }, func() string {
		n, all := conns()
		return fmt.Sprintf("%d of the engine's %d connections still open after Run returned", n, all)
	})
}

// TestWebhooksOnOneHostKeepTheirConnections: webhooks of many accounts often share a host. The
// connections the engine has open to it stay open for the next requests, up to Concurrency, so
// it does not open new ones as its requests in flight rise and fall. (Idle connections had been
// kept up to WebhookConcurrency per host: with 8 webhooks on one host, 2 stayed open and 16 to
// 44 were opened here for 800 requests, over 200 under the race detector.)
func TestWebhooksOnOneHostKeepTheirConnections(t *testing.T) {
	receiver := unstartedHoldingReceiver(func(int) time.Duration { return 2 * time.Millisecond }, nil)
	conns := countConns(receiver.Server)
	receiver.Start()
	t.Cleanup(receiver.Close)

	st := openStore(t)
	a := createWebhook(t, st, receiver.URL+"/0")
	for i := 1; i < 8; i++ {
		addWebhook(t, st, a.ID, fmt.Sprintf("%s/%d", receiver.URL, i))
	}
	publishEvents(t, st, a, 100)
	const concurrency = 16
	e := New(Config{Store: st, Owner: "one-host", AllowPrivate: true, Concurrency: concurrency, WebhookConcurrency: 2,
		PollInterval: 10 * time.Millisecond})
	stop := runEngine(t, e)
	defer stop()
	receiver.waitAnswered(t, 800, 30*time.Second)
	time.Sleep(100 * time.Millisecond) // for connections being closed to be counted
	// Up to concurrency stay open for the next requests; a request may dial a connection of
	// its own just before another is free, which then stays open too, so opened has room.
	if open, opened := conns(); open < concurrency/2 || opened > 2*concurrency {
		t.Fatalf("%d connections open to the one host after 800 requests with at most %d in flight, %d opened; want at least %d kept open, at most %d opened",
			open, concurrency, opened, concurrency/2, 2*concurrency)
	}
}

// countConns counts srv's connections (set before srv starts): it returns a function that
// reports how many are open and how many were opened.
func countConns(srv *httptest.Server) func() (open, opened int) {
	var mu sync.Mutex
	var n, all int
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			n++
			all++
		case http.StateClosed, http.StateHijacked:
			n--
		}
	}
	return func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return n, all
	}
}

// holdingReceiver is a real HTTP receiver that holds each request for answer(n), n being the
// requests it holds (that one included), then answers 200, and counts what it answered.
type holdingReceiver struct {
	*httptest.Server
	mu       sync.Mutex // guards the counts, and what arrived touches
	inFlight int
	answered int
}

// newHoldingReceiver starts a holdingReceiver, closed when the test ends; arrived, if not nil,
// hears of each request as it arrives, under mu: how many are held with it and how many were
// answered before it.
func newHoldingReceiver(t *testing.T, answer func(inFlight int) time.Duration, arrived func(inFlight, answered int)) *holdingReceiver {
	rc := unstartedHoldingReceiver(answer, arrived)
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

// unstartedHoldingReceiver is newHoldingReceiver's receiver before it starts, for a test that
// sets its server's Config first; the test starts and closes it.
func unstartedHoldingReceiver(answer func(inFlight int) time.Duration, arrived func(inFlight, answered int)) *holdingReceiver {
	rc := &holdingReceiver{}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.inFlight++
		n := rc.inFlight
		if arrived != nil {
			arrived(n, rc.answered)
		}
		rc.mu.Unlock()
		time.Sleep(answer(n))
		rc.mu.Lock()
		rc.inFlight--
		rc.answered++
		rc.mu.Unlock()
	}))
	return rc
}

// count is how many requests were answered.
func (rc *holdingReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.answered
}

// waitAnswered waits until n requests were answered; the test fails after timeout.
func (rc *holdingReceiver) waitAnswered(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() bool { return rc.count() == n },
		func() string { return fmt.Sprintf("%d of %d deliveries received", rc.count(), n) })
}

// eventually polls cond every 10 ms until it holds, failing the test with describe() once limit
// has passed.
func eventually(t *testing.T, limit time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, describe())
		}
	}
}

// runEngine runs e until stop is called; stop waits for Run to return and fails the test on
// its error.
func runEngine(t *testing.T, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// openStore opens an SQLite store in a temporary directory, closed when the test ends.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// publishEvents publishes n message-send events of account a, each with its own id.
func publishEvents(t *testing.T, st store.Store, a store.Account, n int) {
	t.Helper()
	now := time.Now()
	var batch []store.NewEvent
	for i := range n {
		batch = append(batch, store.NewEvent{ID: fmt.Sprintf("evt-%05d", i), AccountID: a.ID, Type: "message-send",
			Body: []byte(`{}`), CreatedAt: now})
	}
	if _, err := st.Publish(context.Background(), store.PublishParams{Events: batch, IdempotencySince: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// createWebhook creates an account with one webhook for message-send events at url, limited
// to 1,000,000 requests a minute, and returns the account.
func createWebhook(t *testing.T, st store.Store, url string) store.Account {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	a, _, err := st.CreateAccount(ctx, store.Account{Email: "engine@acme.test", Name: "Engine", CreatedAt: now},
		store.NewAPIKey{Prefix: "hr_engine", Hash: []byte("engine")})
	if err != nil {
		t.Fatal(err)
	}
	addWebhook(t, st, a.ID, url)
	return a
}

// addWebhook creates a webhook of account for message-send events at url, limited to
// 1,000,000 requests a minute.
func addWebhook(t *testing.T, st store.Store, account int64, url string) {
	t.Helper()
	now := time.Now()
	if _, err := st.CreateWebhook(context.Background(), store.Webhook{AccountID: account, Event: "message-send", URL: url, Secret: "s3cret",
		SkipErrorCodes: []string{}, MaxThroughputPerMinute: 1_000_000, Status: store.WebhookActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}
