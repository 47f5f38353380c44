package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/webhook"
)

// received is one request a receiver got.
type received struct {
	At       time.Time
	Body     []byte
	Header   http.Header
	SigValid bool // X-Signature verified with the receiver's secret at that moment
}

// receiver is a real HTTP endpoint that records every request, verifies its signature on its
// own (crypto/hmac through the public webhook package) and answers as scripted.
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	secret string
	got    []received
	answer func(n int, r *http.Request) (int, http.Header, string) // n counts from 1
	signal chan struct{}
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	rc := &receiver{secret: secret, signal: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rec := received{At: at, Body: body, Header: r.Header.Clone(),
		SigValid: webhook.Verify(rc.secret, body, r.Header.Get(webhook.SignatureHeader)) == nil}
	rc.got = append(rc.got, rec)
	n := len(rc.got)
	answer := rc.answer
	rc.mu.Unlock()
	select {
	case rc.signal <- struct{}{}:
	default:
	}
	status, h, text := http.StatusOK, http.Header(nil), "ok"
	if answer != nil {
		status, h, text = answer(n, r)
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	io.WriteString(w, text)
}

// script sets how the receiver answers from now on.
func (rc *receiver) script(f func(n int, r *http.Request) (int, http.Header, string)) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

// holdAfter makes the receiver answer 200 to its first n requests and hold every later one
// unanswered until the returned function is called (it is also called when the test ends), so
// a test can stop or kill a server with attempts in flight whatever the machine's speed.
func (rc *receiver) holdAfter(t *testing.T, n int) (release func()) {
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	rc.script(func(i int, _ *http.Request) (int, http.Header, string) {
		if i > n {
			<-gate
		}
		return 200, nil, ""
	})
	return release
}

// always answers every request with status.
func always(status int) func(int, *http.Request) (int, http.Header, string) {
	return func(int, *http.Request) (int, http.Header, string) { return status, nil, http.StatusText(status) }
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// waitFor waits until the receiver has at least n requests, failing the test after limit.
func (rc *receiver) waitFor(t *testing.T, n int, limit time.Duration) []received {
	t.Helper()
	deadline := time.After(limit)
	for {
		if got := rc.requests(); len(got) >= n {
			return got
		}
		select {
		case <-rc.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d within %v", rc.count(), n, limit)
		}
	}
}

// eventIDs returns the X-Event-Id of every request, in order.
func eventIDs(rs []received) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.Header.Get(webhook.EventIDHeader)
	}
	return ids
}
