package bench

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hookrelay/hookrelay/webhook"
)

// receivers are the local HTTP servers deliveries go to. They serve whatever target is
// installed: the hooks of the run under way and its tracker.
type receivers struct {
	servers []*http.Server
	urls    []string
	cur     atomic.Pointer[target]
	wg      sync.WaitGroup // servers
	active  sync.WaitGroup // handlers running
}

// target is what the receivers check and record into for one run (or the baseline).
type target struct {
	t           *tracker
	hooks       map[int64]*hook // by webhook id
	failRate    float64
	lastAttempt int           // attempts at this number or later are never failed on purpose
	latency     time.Duration // added to every answer
	stallFor    time.Duration // how long a stalling webhook's receiver holds a request
	down        atomic.Pointer[chan struct{}]
	closing     chan struct{} // closed when the run stops: held requests are let go
	closeOnce   sync.Once
}

// hookKind says how a webhook's receiver behaves.
type hookKind int

const (
	kindNormal  hookKind = iota
	kindLimited          // fairness: maxThroughputPerMinute 60; not waited for
	kindStalled          // fairness: never answers within the delivery timeout; not waited for
)

// hook is one webhook of a run.
type hook struct {
	k        int // index in the layout (group*fanout+slot); -1 for an extra webhook
	group    int
	slot     int
	kind     hookKind
	receiver int
	url      string
	secret   string // given to hookrelay
	verify   string // the receiver checks with this one (= secret, unless a test says otherwise)
	limit    int    // maxThroughputPerMinute
	id       int64  // hookrelay's id, once created
	extra    *extraStats
}

// extraStats are what the receivers saw of an extra (fairness) webhook.
type extraStats struct {
	requests, ok, timedOut atomic.Int64
	mu                     sync.Mutex
	arrivals               []time.Duration // since the tracker's epoch
}

func (t *target) close() { t.closeOnce.Do(func() { close(t.closing) }) }

// setDown makes the receivers hold every request unanswered until setUp.
func (t *target) setDown() {
	ch := make(chan struct{})
	t.down.Store(&ch)
}

func (t *target) setUp() {
	if ch := t.down.Swap(nil); ch != nil {
		close(*ch)
	}
}

func startReceivers(n int) (*receivers, error) {
	rc := &receivers{}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			rc.close()
			return nil, fmt.Errorf("start receiver: %w", err)
		}
		srv := &http.Server{
			Handler:           rc,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          log.New(io.Discard, "", 0),
		}
		rc.servers = append(rc.servers, srv)
		rc.urls = append(rc.urls, "http://"+ln.Addr().String())
		rc.wg.Go(func() { srv.Serve(ln) })
	}
	return rc, nil
}

func (rc *receivers) close() {
	if t := rc.cur.Load(); t != nil {
		t.close()
		t.setUp()
	}
	for _, s := range rc.servers {
		s.Close()
	}
	rc.wg.Wait()
	rc.active.Wait()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func readBody(r *http.Request, buf []byte) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= webhook.MaxBodySize {
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return buf, err
		}
		return buf, nil
	}
	w := bytes.NewBuffer(buf[:0])
	_, err := io.Copy(w, io.LimitReader(r.Body, webhook.MaxBodySize))
	return w.Bytes(), err
}

func (rc *receivers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.active.Add(1)
	defer rc.active.Done()
	start := time.Now()
	tg := rc.cur.Load()
	if tg == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if ch := tg.down.Load(); ch != nil {
		select {
		case <-*ch:
		case <-r.Context().Done():
			tg.t.cancelled.Add(1)
			return
		case <-tg.closing:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}
	t := tg.t
	bp := bufPool.Get().(*[]byte)
	body, err := readBody(r, *bp)
	defer func() {
		*bp = body[:0]
		bufPool.Put(bp)
	}()
	if err != nil {
		t.problem("receiver: reading a request body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}

	wid := r.Header.Get(webhook.WebhookIDHeader)
	id, _ := strconv.ParseInt(wid, 10, 64)
	hk := tg.hooks[id]
	if hk == nil {
		t.problem("receiver: a request for unknown webhook %q (X-Webhook-Id)", wid)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err := webhook.Verify(hk.verify, body, r.Header.Get(webhook.SignatureHeader)); err != nil {
		if t.badSig.Add(1) <= 3 {
			t.problem("receiver: webhook %d: X-Signature %q does not verify against the webhook's secret: %v", id, r.Header.Get(webhook.SignatureHeader), err)
		}
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	typ := t.lay.groups[hk.group].typ
	i := eventIndex(body, typ)
	if i < 0 || i >= t.events || t.lay.groupOf(i) != hk.group {
		t.problem("receiver: webhook %d got a body that is none of its events: %.120q", id, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	eb := bufPool.Get().(*[]byte)
	want := t.lay.appendBody((*eb)[:0], i, t.payload)
	same := bytes.Equal(want, body)
	*eb = want[:0]
	bufPool.Put(eb)
	if !same {
		t.problem("receiver: event %d to webhook %d: body differs from the one published: %.120q", i, id, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	eid, err := uuid.Parse(r.Header.Get(webhook.EventIDHeader))
	if err != nil {
		t.problem("receiver: event %d: X-Event-Id %q is not a UUID", i, r.Header.Get(webhook.EventIDHeader))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	t.noteID(i, eid)
	if et := r.Header.Get(webhook.EventTypeHeader); et != typ {
		t.problem("receiver: event %d: X-Event-Type %q, want %q", i, et, typ)
	}
	attempt, _ := strconv.Atoi(r.Header.Get(webhook.AttemptHeader))

	if hk.extra != nil {
		tg.serveExtra(w, r, hk, start)
		return
	}
	p := &t.pairs[i*t.lay.fanout+hk.slot]
	p.n.Add(1)
	t.requests.Add(1)
	if tg.latency > 0 {
		timer := time.NewTimer(tg.latency)
		select {
		case <-timer.C:
		case <-tg.closing:
			timer.Stop()
		}
	}
	if tg.failRate > 0 && attempt < tg.lastAttempt && rand.Float64() < tg.failRate {
		t.failed[t.rangeOf(i)].Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if r.Context().Err() != nil { // the sender is gone: this 200 would reach no one
		t.cancelled.Add(1)
		return
	}
	t.delivered200(i, p, attempt)
	w.WriteHeader(http.StatusOK)
}

// serveExtra answers a request for an extra (fairness) webhook.
func (tg *target) serveExtra(w http.ResponseWriter, r *http.Request, hk *hook, start time.Time) {
	x := hk.extra
	x.requests.Add(1)
	x.mu.Lock()
	x.arrivals = append(x.arrivals, start.Sub(tg.t.epoch))
	x.mu.Unlock()
	if hk.kind == kindStalled {
		timer := time.NewTimer(tg.stallFor)
		defer timer.Stop()
		select {
		case <-r.Context().Done():
			x.timedOut.Add(1)
			return
		case <-tg.closing:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case <-timer.C:
		}
	}
	x.ok.Add(1)
	w.WriteHeader(http.StatusOK)
}

// checkWindow reports an error if more than limit of the arrivals fall within any 60 seconds.
func (x *extraStats) checkWindow(limit int) error {
	x.mu.Lock()
	a := append([]time.Duration(nil), x.arrivals...)
	x.mu.Unlock()
	slices.Sort(a)
	for k := 0; k+limit < len(a); k++ {
		if d := a[k+limit] - a[k]; d < time.Minute {
			return fmt.Errorf("the webhook limited to %d/min got %d requests within %s", limit, limit+1, d.Round(time.Millisecond))
		}
	}
	return nil
}
