package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
)

// benchReceiver counts requests and answers 200 at once.
type benchReceiver struct {
	srv *httptest.Server
	n   atomic.Int64
}

func newBenchReceiver(b *testing.B) *benchReceiver {
	r := &benchReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		r.n.Add(1)
		w.WriteHeader(200)
	}))
	r.srv.Config.SetKeepAlivesEnabled(true)
	b.Cleanup(r.srv.Close)
	return r
}

// benchSetup starts a server with webhooks webhooks on one account, all to rc, and returns a
// function that publishes one batch of size events.
func benchSetup(b *testing.B, rc *benchReceiver, webhooks int) (publish func(size int)) {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = b.TempDir()
	cfg.AdminKey = "hra_bench_admin_key_0123456789"
	cfg.AllowPrivateDestinations = true
	cfg.LogLevel = slog.LevelWarn
	ts := startWith(b, cfg).URL
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(path, key string, body any) map[string]any {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", ts+path, bytes.NewReader(j))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode >= 300 {
			b.Fatalf("%s: %d %v", path, resp.StatusCode, m)
		}
		return m
	}
	acct := call("/v3/accounts", cfg.AdminKey, map[string]any{"email": "bench@acme.test"})["data"].(map[string]any)
	for range webhooks {
		call("/v3/webhooks", acct["apiKey"].(string), map[string]any{"event": "delivery-status", "url": rc.srv.URL, "secret": "bench-secret", "maxThroughputPerMinute": 1000000})
	}
	id := acct["id"]
	var seq atomic.Int64
	return func(size int) {
		events := make([]map[string]any, size)
		for i := range events {
			events[i] = map[string]any{"accountId": id, "event": "delivery-status", "data": map[string]any{
				"destinationNumber": "+15550100", "messageId": seq.Add(1), "status": "delivered", "tags": map[string]string{"campaign": "bench"}}}
		}
		call("/v3/events/batch", cfg.AdminKey, map[string]any{"events": events})
	}
}

// publishAll calls publish n times from publishers goroutines.
func publishAll(n, publishers int, publish func()) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range publishers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				publish()
			}
		})
	}
	wg.Wait()
}

// BenchmarkPublish measures events accepted per second through POST /v3/events/batch
// (batches of 100, 4 concurrent publishers, one webhook each event fans out to).
func BenchmarkPublish(b *testing.B) {
	rc := newBenchReceiver(b)
	publish := benchSetup(b, rc, 1)
	const batch, publishers = 100, 4
	b.ResetTimer()
	start := time.Now()
	publishAll(b.N, publishers, func() { publish(batch) })
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkEndToEnd measures deliveries per second from publish to a 200 at a local receiver:
// each op publishes a batch of 100 events that fan out to 2 webhooks.
func BenchmarkEndToEnd(b *testing.B) {
	rc := newBenchReceiver(b)
	const batch, fanout, publishers = 100, 2, 4
	publish := benchSetup(b, rc, fanout)
	b.ResetTimer()
	start := time.Now()
	publishAll(b.N, publishers, func() { publish(batch) })
	want := int64(b.N * batch * fanout)
	deadline := time.Now().Add(5 * time.Minute)
	for rc.n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", rc.n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")

	if got := rc.n.Load(); got != want {
		b.Fatalf("receiver got %d requests, want %d", got, want)
	}
}
