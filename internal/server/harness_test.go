package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/server"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
)

// testServer is a real hookrelay server on a random port with its own data dir.
type testServer struct {
	URL      string
	AdminKey string
	Config   config.Config
	srv      *server.Server
	stop     func()
	logs     *syncBuffer
}

// testConfig is the configuration tests start from: a fresh data dir, a random port, private
// destinations allowed (receivers are on 127.0.0.1) and fast retries.
func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminKey = "hra_test_admin_key_0123456789"
	cfg.AllowPrivateDestinations = true
	cfg.RetrySchedule = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	cfg.DeliveryTimeout = 2 * time.Second
	cfg.LogLevel = slog.LevelDebug
	return cfg
}

// starter starts a server with testConfig changed by edit; it stops when the test ends.
type starter func(t *testing.T, edit ...func(*config.Config)) *testServer

// start runs a server on the embedded store.
func start(t *testing.T, edit ...func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	for _, e := range edit {
		e(&cfg)
	}
	return startWith(t, cfg)
}

// startPG runs a server on PostgreSQL, in a schema of its own.
func startPG(t *testing.T, edit ...func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.DatabaseURL = pgtest.SchemaURL(t)
	for _, e := range edit {
		e(&cfg)
	}
	return startWith(t, cfg)
}

// eachStore runs test in parallel on every store: the embedded one, and PostgreSQL when
// HOOKRELAY_TEST_POSTGRES_URL is set.
func eachStore(t *testing.T, test func(t *testing.T, start starter)) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, start)
	})
	if os.Getenv("HOOKRELAY_TEST_POSTGRES_URL") == "" {
		return
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, startPG)
	})
}

func startWith(t testing.TB, cfg config.Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{URL: "http://" + srv.Addr(), AdminKey: srv.AdminKey(), Config: cfg, srv: srv, logs: logs}
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

// call makes a request with an optional JSON body (a string is sent as is) and decodes the
// JSON answer into a generic map.
func (ts *testServer) call(t *testing.T, method, path, key string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	status, raw, h := ts.callRaw(t, method, path, key, "application/json", body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return status, m, h
}

func (ts *testServer) callRaw(t *testing.T, method, path, key, contentType string, body any) (int, []byte, http.Header) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		raw = j
	}
	header := http.Header{}
	if body != nil && contentType != "" {
		header.Set("Content-Type", contentType)
	}
	if key != "" {
		header.Set("Authorization", "Bearer "+key)
	}
	return ts.request(t, method, path, header, raw)
}

// createAccount makes an account through the API and returns its id and key.
func (ts *testServer) createAccount(t *testing.T, email string) (int64, string) {
	t.Helper()
	status, m, _ := ts.call(t, "POST", "/v3/accounts", ts.AdminKey, map[string]any{"email": email, "name": "Test " + email})
	if status != 200 {
		t.Fatalf("create account %s: %d %v", email, status, m)
	}
	data := m["data"].(map[string]any)
	return int64(data["id"].(float64)), data["apiKey"].(string)
}

// createWebhook registers a webhook and returns its id.
func (ts *testServer) createWebhook(t *testing.T, key string, body map[string]any) int64 {
	t.Helper()
	status, m, _ := ts.call(t, "POST", "/v3/webhooks", key, body)
	if status != 200 {
		t.Fatalf("create webhook %v: %d %v", body, status, m)
	}
	return int64(m["data"].(map[string]any)["id"].(float64))
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// request sends a request with exactly the given headers (nothing is added: no Authorization,
// no Content-Type) and returns the raw answer.
func (ts *testServer) request(t *testing.T, method, path string, header http.Header, body []byte) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw, resp.Header
}

// eventually polls cond until it holds, failing the test with describe() after limit.
func eventually(t testing.TB, limit time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
