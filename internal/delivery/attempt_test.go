package delivery

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := policy{schedule: []time.Duration{30 * time.Second, 5 * time.Minute}, jitter: func() float64 { return 0.5 }}
	base := store.Webhook{RetryOnError: true, SkipErrorCodes: []string{"404"}}
	skipAll := base
	skipAll.SkipErrors = true
	noRetry := base
	noRetry.RetryOnError = false
	tests := []struct {
		name    string
		w       store.Webhook
		attempt int
		res     result
		status  string
		delay   time.Duration
	}{
		{"200 succeeds", base, 1, result{StatusCode: 200}, store.StatusSucceeded, 0},
		{"201 is an error", base, 1, result{StatusCode: 201}, store.StatusPending, 30 * time.Second},
		{"302 is an error", base, 1, result{StatusCode: 302}, store.StatusPending, 30 * time.Second},
		{"listed code ignored", base, 1, result{StatusCode: 404}, store.StatusIgnored, 0},
		{"skipErrors ignores any status", skipAll, 1, result{StatusCode: 500}, store.StatusIgnored, 0},
		{"skipErrors never ignores a transport error", skipAll, 1, result{Error: "connection refused"}, store.StatusPending, 30 * time.Second},
		{"second retry", base, 2, result{StatusCode: 500}, store.StatusPending, 5 * time.Minute},
		{"retries exhausted", base, 3, result{StatusCode: 500}, store.StatusFailed, 0},
		{"retryOnError false", noRetry, 1, result{StatusCode: 500}, store.StatusFailed, 0},
		{"410 is not retried", base, 1, result{StatusCode: 410}, store.StatusFailed, 0},
		{"Retry-After longer wins", base, 1, result{StatusCode: 429, RetryAfter: 2 * time.Minute}, store.StatusPending, 2 * time.Minute},
		{"Retry-After shorter loses", base, 1, result{StatusCode: 503, RetryAfter: time.Second}, store.StatusPending, 30 * time.Second},
	}
	for _, tt := range tests {
		status, next := p.decide(tt.w, tt.attempt, tt.res, now)
		if status != tt.status {
			t.Errorf("%s: status %s, want %s", tt.name, status, tt.status)
		}
		if tt.status == store.StatusPending && next.Sub(now) != tt.delay {
			t.Errorf("%s: retry in %v, want %v", tt.name, next.Sub(now), tt.delay)
		}
	}
}

func TestDecideJitterWithinTenPercent(t *testing.T) {
	now := time.Now()
	w := store.Webhook{RetryOnError: true}
	for _, j := range []float64{0, 0.25, 0.999999} {
		p := policy{schedule: []time.Duration{100 * time.Second}, jitter: func() float64 { return j }}
		_, next := p.decide(w, 1, result{StatusCode: 500}, now)
		if d := next.Sub(now); d < 90*time.Second || d > 110*time.Second {
			t.Errorf("jitter %v: delay %v outside ±10%% of 100s", j, d)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":      0,
		"120":   2 * time.Minute,
		"0":     0,
		"-5":    0,
		"soon":  0,
		"99999": time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		now.Add(5 * time.Hour).Format(http.TimeFormat):    time.Hour,
	}
	for in, want := range tests {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
