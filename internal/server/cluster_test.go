package server_test

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
)

// cluster starts n servers sharing one PostgreSQL schema.
func cluster(t *testing.T, n int, edit ...func(*config.Config)) []*testServer {
	t.Helper()
	url := pgtest.SchemaURL(t)
	nodes := make([]*testServer, n)
	for i := range nodes {
		cfg := testConfig(t)
		cfg.DatabaseURL = url
		for _, e := range edit {
			e(&cfg)
		}
		nodes[i] = startWith(t, cfg)
	}
	return nodes
}

// publishSpread publishes events message-send events of account, each through the next node.
func publishSpread(t *testing.T, nodes []*testServer, account int64, events int) []string {
	t.Helper()
	ids := make([]string, events)
	var wg sync.WaitGroup
	for i := range events {
		wg.Go(func() {
			id, _ := nodes[i%len(nodes)].publish(t, account, "message-send", map[string]any{"messageId": i + 1, "destinationNumber": "+15550100"})
			ids[i] = id
		})
	}
	wg.Wait()
	return ids
}

// TestClusterDeliversOnce: three nodes on one database deliver every event exactly once when
// nothing crashes, whichever node it was published through.
func TestClusterDeliversOnce(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 3)
	a, key := nodes[0].createAccount(t, "cluster@acme.test")
	rc := newReceiver(t, "s")
	rc.script(func(int, *http.Request) (int, http.Header, string) {
		time.Sleep(5 * time.Millisecond)
		return 200, nil, ""
	})
	nodes[1].createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"maxThroughputPerMinute": 1000000}))
	const events = 300
	ids := publishSpread(t, nodes, a, events)
	rc.waitFor(t, events, 60*time.Second)
	time.Sleep(time.Second) // anything repeated would have arrived by now
	seen := map[string]int{}
	for _, id := range eventIDs(rc.requests()) {
		seen[id]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("event %s arrived %d times across three nodes", id, seen[id])
		}
	}
	if len(seen) != events {
		t.Fatalf("%d distinct events arrived, want %d", len(seen), events)
	}
	// Every node did some of the work: claims are spread, not one node's.
	if got := rc.count(); got != events {
		t.Fatalf("%d requests for %d events", got, events)
	}
}

// TestClusterWebhookChangesReachEveryNode: a PATCH or DELETE through one node takes effect on
// the others at once.
func TestClusterWebhookChangesReachEveryNode(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 2, func(c *config.Config) {
		c.RetrySchedule = []time.Duration{time.Second, time.Second, time.Second, time.Second}
	})
	a, key := nodes[0].createAccount(t, "changes@acme.test")
	oldR, newR := newReceiver(t, "old"), newReceiver(t, "new")
	oldR.script(always(500))
	h := nodes[0].createWebhook(t, key, hookBody("message-send", oldR.srv.URL, "old", nil))
	publishSpread(t, nodes, a, 4)
	oldR.waitFor(t, 4, 10*time.Second)
	// The retries are held by both nodes; the PATCH goes through one of them.
	if status, m, _ := nodes[1].call(t, "PATCH", fmt.Sprintf("/v3/webhooks/%d", h), key, map[string]any{"url": newR.srv.URL, "secret": "new"}); status != 200 {
		t.Fatalf("patch: %d %v", status, m)
	}
	before := oldR.count()
	got := newR.waitFor(t, 4, 15*time.Second)
	for _, g := range got {
		if !g.SigValid {
			t.Fatal("a retry after the PATCH was signed with the old secret")
		}
	}
	if oldR.count() != before {
		t.Fatalf("%d requests reached the old URL after the PATCH", oldR.count()-before)
	}
	// Deleting through one node stops the others too.
	newR.script(always(500))
	publishSpread(t, nodes, a, 2)
	newR.waitFor(t, 6, 10*time.Second)
	if status, _, _ := nodes[0].call(t, "DELETE", fmt.Sprintf("/v3/webhooks/%d", h), key, nil); status != 200 {
		t.Fatal("delete failed")
	}
	after := newR.count()
	time.Sleep(2500 * time.Millisecond)
	if newR.count() != after {
		t.Fatalf("%d requests reached a deleted webhook", newR.count()-after)
	}
}

// TestClusterThroughputWindow: three nodes together respect maxThroughputPerMinute, on the
// receiver's clock.
func TestClusterThroughputWindow(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 3)
	a, key := nodes[0].createAccount(t, "cluster-window@acme.test")
	rc := newReceiver(t, "s")
	const limit, events = 4, 7
	nodes[0].createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"maxThroughputPerMinute": limit}))
	publishSpread(t, nodes, a, events)
	at := checkWindow(t, rc.waitFor(t, events, 150*time.Second), limit)
	if first := at[limit].Sub(at[0]); first < time.Minute {
		t.Fatalf("request %d came %v after the first", limit+1, first)
	}
}

// TestClusterNodeKilled: SIGKILL one of three node processes mid-stream; every accepted event
// still arrives (the dead node's claims come back when their leases end).
func TestClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	url := pgtest.SchemaURL(t)
	rc := newReceiver(t, "s")
	// The victim dies with attempts in flight and deliveries claimed.
	open := rc.holdAfter(t, 150)
	var procs []*process
	for range 3 {
		procs = append(procs, startProcess(t, t.TempDir(), "--database-url", url, "--delivery-timeout", "2s"))
	}
	account := setupProcess(t, procs[0], rc)
	var mu sync.Mutex
	var accepted []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, p := range procs[1:] {
		wg.Go(func() {
			ids := publishUntil(p, account, stop, 0, nil)
			mu.Lock()
			accepted = append(accepted, ids...)
			mu.Unlock()
		})
	}
	// The victim publishes too, and holds claims when it dies.
	victim := procs[0]
	wg.Go(func() {
		ids := publishUntil(victim, account, stop, 0, nil)
		mu.Lock()
		accepted = append(accepted, ids...)
		mu.Unlock()
	})
	rc.waitFor(t, 200, 60*time.Second)
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	close(stop)
	wg.Wait()
	before := rc.count()
	open()
	seen := waitAllDelivered(t, rc, accepted, 120*time.Second)
	repeats := 0
	for _, n := range seen {
		repeats += n - 1
	}
	t.Logf("%d events accepted by three nodes, one killed with %d requests held; %d requests in all, %d repeated",
		len(accepted), before-150, rc.count(), repeats)
	if before-150 < 10 {
		t.Fatalf("only %d requests were in flight at the kill; the test needs some", before-150)
	}
}
