package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hookrelay/hookrelay/internal/apikey"
	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/server"
	"github.com/hookrelay/hookrelay/internal/store"
)

// pipeline is one or more hookrelay servers running in this process on one store.
type pipeline struct {
	nodes    []*node
	urls     []string
	adminKey string
	client   *http.Client
	// engine, if set, gets the delivery attempts the nodes' engines made, once they stop.
	engine *engineAttempts
	// maxInFlight is each node's bound on attempts in flight (--max-in-flight).
	maxInFlight int
}

// engineAttempts counts attempts as the engines made them, beside the receivers' count of
// the requests that reached them: an attempt that never reached a receiver (a transport error,
// a timeout) is only here.
type engineAttempts struct {
	all, noResponse int64
	deferred        int64 // deliveries given back to the store unattempted, to wait
}

type node struct {
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
}

// startPipeline starts o.Nodes servers with cfg (the bench's settings applied by the caller),
// logging at cfg.LogLevel into logs.
func startPipeline(ctx context.Context, o Options, cfg config.Config, logs io.Writer) (*pipeline, error) {
	p := &pipeline{
		adminKey: apikey.New(apikey.AdminPrefix),
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}},
	}
	cfg.AdminKey = p.adminKey
	p.maxInFlight = cfg.MaxInFlight
	for n := range o.Nodes {
		log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
		if o.Nodes > 1 {
			log = log.With("node", n+1)
		}
		srv, err := server.New(ctx, cfg, log)
		if err != nil {
			p.stop()
			if cfg.DatabaseURL != "" {
				return nil, fmt.Errorf("start hookrelay node %d of %d on PostgreSQL (--database-url): %w", n+1, o.Nodes, err)
			}
			return nil, fmt.Errorf("start hookrelay on the embedded store in %s: %w", cfg.DataDir, err)
		}
		nctx, cancel := context.WithCancel(context.Background())
		nd := &node{srv: srv, cancel: cancel, done: make(chan error, 1)}
		go func() { nd.done <- srv.Run(nctx) }()
		p.nodes = append(p.nodes, nd)
		p.urls = append(p.urls, "http://"+srv.Addr())
	}
	return p, nil
}

// stop stops every node: they finish the requests and attempts in flight and write outcomes.
func (p *pipeline) stop() error {
	for _, nd := range p.nodes {
		nd.cancel()
	}
	var errs []error
	for i, nd := range p.nodes {
		select {
		case err := <-nd.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("node %d stopped with: %w", i+1, err))
			}
		case <-time.After(10 * time.Minute):
			errs = append(errs, fmt.Errorf("node %d did not stop within 10 minutes", i+1))
		}
	}
	if p.engine != nil {
		for _, nd := range p.nodes {
			all, none := nd.srv.Metrics().Attempted()
			p.engine.all += all
			p.engine.noResponse += none
			p.engine.deferred += nd.srv.Metrics().Deferred()
		}
	}
	p.nodes = nil
	p.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// writerMark is the store writer's figures at one moment, when the store has a single writer
// (the embedded store; PostgreSQL has none).
type writerMark struct {
	at time.Time
	s  store.WriterStats
	ok bool
}

// writerMark reads the store writer's figures (the embedded store runs one node).
func (p *pipeline) writerMark() writerMark {
	if len(p.nodes) != 1 {
		return writerMark{}
	}
	s, ok := p.nodes[0].srv.Metrics().Writer()
	return writerMark{at: time.Now(), s: s, ok: ok}
}

// since reports what the writer did from m0 to m.
func (m writerMark) since(m0 writerMark) *WriterReport {
	if !m.ok || !m0.ok {
		return nil
	}
	busy, commits := m.s.Busy-m0.s.Busy, m.s.Commits-m0.s.Commits
	w := &WriterReport{Commits: commits}
	if wall := m.at.Sub(m0.at); wall > 0 {
		w.Busy = busy.Seconds() / wall.Seconds()
	}
	if busy > 0 {
		w.CommitShare = (m.s.Committing - m0.s.Committing).Seconds() / busy.Seconds()
	}
	if commits > 0 {
		w.WritesPerCommit = float64(m.s.Writes-m0.s.Writes) / float64(commits)
	}
	slowest := -1 // the last bucket with a commit of the phase
	for i := range m.s.CommitsBy {
		n := m.s.CommitsBy[i] - m0.s.CommitsBy[i]
		if n == 0 {
			continue
		}
		slowest = i
		if i > 0 && store.CommitBounds[i-1] >= 10*time.Millisecond {
			w.CommitsOver10ms += n
		}
	}
	if slowest >= 0 {
		w.SlowestCommitMs = &Bucket{}
		if slowest > 0 {
			w.SlowestCommitMs.Over = ms(store.CommitBounds[slowest-1])
		}
		if slowest < len(store.CommitBounds) {
			w.SlowestCommitMs.UpTo = ms(store.CommitBounds[slowest])
		}
	}
	return w
}

// call POSTs body to node's path with key and decodes the JSON answer into out.
func (p *pipeline) call(ctx context.Context, node int, path, key string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.urls[node%len(p.urls)]+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("POST %s: answer is not the expected JSON: %w: %.200s", path, err, raw)
	}
	return nil
}

// account is one account created through the API.
type account struct {
	id  int64
	key string
}

// setup creates the accounts and webhooks of a run through the API; it fills in each hook's id.
func (p *pipeline) setup(ctx context.Context, lay *layout, hooks []*hook, token string, progress func(string)) ([]account, error) {
	accounts := make([]account, lay.accounts)
	err := parallel(ctx, 8, len(accounts), func(ctx context.Context, k int) error {
		body, _ := json.Marshal(map[string]string{
			"email": fmt.Sprintf("bench-%s-%d@bench.test", token, k+1),
			"name":  fmt.Sprintf("bench %s %d", token, k+1),
		})
		var out struct {
			Data struct {
				ID     int64  `json:"id"`
				APIKey string `json:"apiKey"`
			} `json:"data"`
		}
		if err := p.call(ctx, k, "/v3/accounts", p.adminKey, body, &out); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		accounts[k] = account{out.Data.ID, out.Data.APIKey}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var made atomic.Int64
	err = parallel(ctx, 16, len(hooks), func(ctx context.Context, k int) error {
		h := hooks[k]
		g := lay.groups[h.group]
		body, _ := json.Marshal(map[string]any{
			"event":                  g.typ,
			"url":                    h.url,
			"secret":                 h.secret,
			"maxThroughputPerMinute": h.limit,
		})
		var out struct {
			Data struct {
				ID int64 `json:"id"`
			} `json:"data"`
		}
		if err := p.call(ctx, k, "/v3/webhooks", accounts[g.account].key, body, &out); err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		h.id = out.Data.ID
		if n := made.Add(1); progress != nil && n%1000 == 0 {
			progress(fmt.Sprintf("created %d of %d webhooks", n, len(hooks)))
		}
		return nil
	})
	return accounts, err
}

// parallel runs f(0..n-1) on workers goroutines; the first error stops it.
func parallel(ctx context.Context, workers, n int, f func(ctx context.Context, k int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, k); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// secretFor makes webhook k's own secret.
func secretFor(token string, k int) string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return "bench-" + token + "-" + strconv.Itoa(k) + "-" + hex.EncodeToString(b[:])
}

// publisher publishes a run's events through POST /v3/events/batch.
type publisher struct {
	p        *pipeline
	t        *tracker
	accounts []account
	payload  int

	accepted  atomic.Int64
	firstSent atomic.Int64 // ns since the tracker's epoch
	lastAnswr atomic.Int64
	maxLag    atomic.Int64 // ns a request was sent behind its schedule (at a rate)
	node      atomic.Uint32

	mu   sync.Mutex
	rtts []time.Duration
}

var reqPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

type batchAnswer struct {
	Data struct {
		Accepted int `json:"accepted"`
		Results  []struct {
			Status  int    `json:"status"`
			ID      string `json:"id"`
			Message string `json:"message"`
		} `json:"results"`
	} `json:"data"`
}

// batch publishes events [lo, hi) in one request.
func (pb *publisher) batch(ctx context.Context, lo, hi int) error {
	t := pb.t
	lay := t.lay
	bp := reqPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"events":[`...)
	for i := lo; i < hi; i++ {
		if i > lo {
			b = append(b, ',')
		}
		g := lay.groups[lay.groupOf(i)]
		b = append(b, `{"accountId":`...)
		b = strconv.AppendInt(b, pb.accounts[g.account].id, 10)
		b = append(b, `,"event":"`...)
		b = append(b, g.typ...)
		b = append(b, `","data":`...)
		b = lay.appendBody(b, i, pb.payload)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	defer func() { *bp = b[:0]; reqPool.Put(bp) }()

	node := int(pb.node.Add(1)) % len(pb.p.urls)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pb.p.urls[node]+"/v3/events/batch", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pb.p.adminKey)
	sent := t.now()
	for i := lo; i < hi; i++ {
		t.sent[i].Store(toTick(sent))
	}
	pb.firstSent.CompareAndSwap(0, sent)
	resp, err := pb.p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish events %d–%d: %w", lo, hi-1, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	answered := t.now()
	if err != nil {
		return fmt.Errorf("publish events %d–%d: reading the answer: %w", lo, hi-1, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("publish events %d–%d: %s: %.300s", lo, hi-1, resp.Status, bytes.TrimSpace(raw))
	}
	var ans batchAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("publish events %d–%d: the answer is not the documented JSON: %w", lo, hi-1, err)
	}
	if len(ans.Data.Results) != hi-lo {
		return fmt.Errorf("publish events %d–%d: %d results for %d events", lo, hi-1, len(ans.Data.Results), hi-lo)
	}
	for k, r := range ans.Data.Results {
		if r.Status != http.StatusAccepted {
			return fmt.Errorf("publish event %d: status %d: %s", lo+k, r.Status, r.Message)
		}
		id, err := uuid.Parse(r.ID)
		if err != nil {
			return fmt.Errorf("publish event %d: id %q is not a UUID", lo+k, r.ID)
		}
		t.setID(lo+k, id)
	}
	pb.accepted.Add(int64(hi - lo))
	for {
		last := pb.lastAnswr.Load()
		if answered <= last || pb.lastAnswr.CompareAndSwap(last, answered) {
			break
		}
	}
	pb.mu.Lock()
	pb.rtts = append(pb.rtts, time.Duration(answered-sent))
	pb.mu.Unlock()
	return nil
}

// closedLoop publishes events [lo, hi) in batches of size, workers requests at a time, each
// sent as soon as the previous one of its worker was answered.
func (pb *publisher) closedLoop(ctx context.Context, lo, hi, size, workers int) error {
	n := (hi - lo + size - 1) / size
	return parallel(ctx, workers, n, func(ctx context.Context, k int) error {
		a := lo + k*size
		return pb.batch(ctx, a, min(a+size, hi))
	})
}

// openLoop publishes events [lo, hi) in batches of size at rate events/s on a fixed schedule,
// whatever the answers (at most outstanding requests at once; beyond that the schedule slips,
// which maxLag shows), until stop is closed. It returns the end of what it published:
// events [lo, end) were all accepted when it returns nil.
func (pb *publisher) openLoop(ctx context.Context, lo, hi, size int, rate float64, outstanding int, stop <-chan struct{}) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interval := time.Duration(float64(size) / rate * float64(time.Second))
	sem := make(chan struct{}, outstanding)
	var once sync.Once
	var first error
	start := time.Now()
	end := lo
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for k := 0; lo+k*size < hi; k++ {
		due := start.Add(time.Duration(k) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-stop:
				break loop
			case <-ctx.Done():
				break loop
			}
		}
		select {
		case sem <- struct{}{}:
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		}
		if lag := time.Since(due); int64(lag) > pb.maxLag.Load() {
			pb.maxLag.Store(int64(lag))
		}
		a, b := lo+k*size, min(lo+(k+1)*size, hi)
		end = b
		go func() {
			defer func() { <-sem }()
			if err := pb.batch(ctx, a, b); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	for range outstanding {
		sem <- struct{}{}
	}
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return end, first
}

func (pb *publisher) publishRTT() Latency {
	pb.mu.Lock()
	d := append([]time.Duration(nil), pb.rtts...)
	pb.mu.Unlock()
	return percentiles(d, 1)
}

// logBuffer keeps the servers' log, up to a bound (the rest is counted, not kept).
type logBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	dropped int
}

const logLimit = 256 << 10

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len()+len(p) > logLimit {
		l.dropped++
		return len(p), nil
	}
	l.b.Write(p)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if l.dropped > 0 {
		s += fmt.Sprintf("(%d more log lines not kept)\n", l.dropped)
	}
	return s
}

// boundWatch looks, every 100 ms of a measured phase, at whether a node's bound on attempts in
// flight held its deliveries back: it had --max-in-flight attempts in flight and more
// deliveries waiting in memory, while the machine's CPU had room (under 80% of its cores busy
// since the last look). Where the machine's CPU cannot be read it takes no samples.
type boundWatch struct {
	stop, done     chan struct{}
	samples, bound int
}

func (p *pipeline) watchBound() *boundWatch {
	w := &boundWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		prev := machineTimes()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			now := machineTimes()
			use := now.since(prev)
			prev = now
			if use == nil {
				continue
			}
			w.samples++
			if use.CoresBusy >= 0.8*float64(now.cpus) {
				continue
			}
			for _, nd := range p.nodes {
				if inFlight, held := nd.srv.Metrics().Engine(); inFlight >= p.maxInFlight && held > inFlight {
					w.bound++
					break
				}
			}
		}
	}()
	return w
}

// end stops the watch and returns the share of its looks that found the bound holding
// deliveries back (0 without a look).
func (w *boundWatch) end() float64 {
	close(w.stop)
	<-w.done
	if w.samples == 0 {
		return 0
	}
	return float64(w.bound) / float64(w.samples)
}
