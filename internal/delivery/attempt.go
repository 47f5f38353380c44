package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/version"
	"github.com/hookrelay/hookrelay/webhook"
)

// MaxResponseBody is how much of a response is kept in the attempt log.
const MaxResponseBody = 4 << 10

// bodyBuffers hold response bodies while they are read: one buffer per attempt would be most
// of an attempt's garbage.
var bodyBuffers = sync.Pool{New: func() any { return new([MaxResponseBody]byte) }}

// drainLimit is how much more of a response is read (and dropped) so its connection can be
// reused; a larger body costs a new connection instead.
const drainLimit = 64 << 10

// newTransport returns the HTTP transport of deliveries: keep-alive connections per
// destination, up to maxConns (the engine's Concurrency) kept open to each, for webhooks of
// many accounts may share a host and a connection closed after an answer costs a new one (a
// TLS handshake included) for the next request; no proxy from the environment; and, unless
// private destinations are allowed, no connection to loopback, private or link-local
// addresses, checked on the address actually dialled (so DNS cannot smuggle one in). Requests
// go straight to its RoundTrip, which follows no redirects; an http.Client would add nothing
// but a copy of every request's headers.
func newTransport(timeout time.Duration, allowPrivate bool, maxConns int) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = ssrf.New(ssrf.WithAnyPort()).Safe
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(4096, maxConns),
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// result is what one attempt got.
type result struct {
	StatusCode int // 0 when no response came
	Error      string
	Body       string
	Duration   time.Duration
	RetryAfter time.Duration // from a Retry-After header, 0 when none
}

// request is one signed POST to make.
type request struct {
	URL       string
	Signer    *webhook.Signer // of the webhook's secret
	Body      []byte
	EventID   string
	EventType string
	WebhookID int64
	Attempt   int
}

// send makes one attempt; ctx carries its deadline, timeout from now, named in the error when it
// passes.
func send(ctx context.Context, rt http.RoundTripper, timeout time.Duration, r request) result {
	start := time.Now()
	res := post(ctx, rt, r)
	res.Duration = time.Since(start)
	if res.StatusCode == 0 && ctx.Err() == context.DeadlineExceeded {
		res.Error = fmt.Sprintf("timeout: no complete response within %s", timeout)
	}
	return res
}

func post(ctx context.Context, rt http.RoundTripper, r request) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return result{Error: "invalid url: " + err.Error()}
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{version.UserAgent()}
	h[webhook.SignatureHeader] = []string{r.Signer.Sign(r.Body)}
	h[webhook.EventIDHeader] = []string{r.EventID}
	h[webhook.EventTypeHeader] = []string{r.EventType}
	h[webhook.WebhookIDHeader] = []string{strconv.FormatInt(r.WebhookID, 10)}
	h[webhook.AttemptHeader] = []string{strconv.Itoa(r.Attempt)}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		// As http.Client reports it, so that transportError reads it the same way.
		return result{Error: transportError(&url.Error{Op: "Post", URL: r.URL, Err: err})}
	}
	defer resp.Body.Close()
	res := result{StatusCode: resp.StatusCode}
	buf := bodyBuffers.Get().(*[MaxResponseBody]byte)
	n, err := io.ReadFull(resp.Body, buf[:])
	if n > 0 {
		res.Body = strings.ToValidUTF8(string(buf[:n]), "\uFFFD")
	}
	bodyBuffers.Put(buf)
	if err == nil {
		io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	if resp.StatusCode != http.StatusOK {
		res.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	return res
}

// transportError says in a few words why no response came.
func transportError(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, ssrf.ErrProhibitedIP), errors.Is(err, ssrf.ErrProhibitedNetwork), errors.Is(err, ssrf.ErrProhibitedPort),
		errors.Is(err, ssrf.ErrInvalidHostPort):
		return "destination not allowed: it resolves to a loopback, private or link-local address"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "dns: " + dnsErr.Err + " (" + dnsErr.Name + ")"
	}
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// maxRetryAfter caps how long a Retry-After header can delay a retry.
const maxRetryAfter = time.Hour

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// policy decides what an attempt's result means for its delivery.
type policy struct {
	schedule []time.Duration
	jitter   func() float64 // in [0, 1)
}

// decide returns the delivery's next status, and when it is retried if pending. attempt is the
// number of the attempt just made (1 for the first).
func (p policy) decide(w store.Webhook, attempt int, res result, now time.Time) (string, time.Time) {
	if res.StatusCode == http.StatusOK {
		return store.StatusSucceeded, time.Time{}
	}
	if res.StatusCode != 0 && (w.SkipErrors || slices.Contains(w.SkipErrorCodes, strconv.Itoa(res.StatusCode))) {
		return store.StatusIgnored, time.Time{}
	}
	// 410 Gone: the endpoint says it is gone for good, and the webhook is disabled for it;
	// no retry.
	if !w.RetryOnError || attempt > len(p.schedule) || res.StatusCode == http.StatusGone {
		return store.StatusFailed, time.Time{}
	}
	delay := p.schedule[attempt-1]
	// Up to ±10% so that deliveries failed together do not retry together.
	j := 0.5
	if p.jitter != nil {
		j = p.jitter()
	}
	delay = time.Duration(float64(delay) * (0.9 + 0.2*j))
	if res.RetryAfter > delay {
		delay = res.RetryAfter
	}
	return store.StatusPending, now.Add(delay)
}

func defaultJitter() float64 { return rand.Float64() }
