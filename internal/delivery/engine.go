// Package delivery is hookrelay's delivery engine: it claims due deliveries from the store in
// batches, sends each as a signed POST within its webhook's throughput window and concurrency
// bound, decides what each result means (success, ignored, retry later, failed) and writes the
// outcomes back in batches.
//
// The store is the queue: a claimed delivery is leased to this engine, so a crash loses
// nothing (the lease ends and the delivery is due again), and at-least-once holds because a
// delivery is marked succeeded only after its 200 came back.
package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/internal/metrics"
	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/webhook"
)

// Config configures an Engine. Zero values take the defaults named.
type Config struct {
	Store store.Store
	// Owner names this engine's leases; unique per running process.
	Owner string
	// RetrySchedule: the delays before retry 1, 2, …
	RetrySchedule []time.Duration
	// Timeout is one attempt's whole time budget (15s).
	Timeout time.Duration
	// AllowPrivate allows connections to loopback, private and link-local addresses.
	AllowPrivate bool
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
	// Concurrency bounds attempts in flight across all webhooks (512); within it, an
	// engineLimit follows the CPU. It also bounds what receivers far away can get: 512 in
	// flight to receivers answering in 50 ms carry at most about 10,000 deliveries/s.
	Concurrency int
	// WebhookConcurrency bounds attempts in flight to one webhook (64, and at most
	// Concurrency), so one slow destination never holds more than that many of the
	// Concurrency slots; within it, the webhook's concurrencyLimit follows the CPU.
	WebhookConcurrency int
	// MaxHeld bounds the claimed deliveries held in memory, queued or in flight (32768, or
	// 4×Concurrency if more). With fewer, a burst of publishing overflows into the store
	// sooner, to be claimed and read back later; 32768 rather than 8192 cost about 30 MB more
	// RSS in the throughput run.
	MaxHeld int
	// ClaimBatch is the most deliveries one claim takes (1024). While deliveries are held, a
	// claim waits for room for a quarter of it (minClaim).
	ClaimBatch int
	// PollInterval is how often the store is asked for due deliveries when nothing announced
	// any (500ms); retries that come due are found this way.
	PollInterval time.Duration
	// Lease is how long a claim lasts before another node may take the delivery over
	// (2×Timeout + 10s: a claimed delivery waits in memory at most Lease/2 before it is given
	// back, then its attempt takes at most Timeout, so its outcome is written within the lease).
	Lease time.Duration
	// Observer, if set, hears the result of every attempt (alerts and health).
	Observer Observer
}

// Observer hears what happened to deliveries.
type Observer interface {
	// Attempted is called after each attempt with the webhook as it was sent to, the
	// delivery's resulting status, and the attempt.
	Attempted(w store.Webhook, status string, a store.Attempt)
}

// Engine delivers.
type Engine struct {
	cfg    Config
	st     store.Store
	log    *slog.Logger
	m      *metrics.Metrics
	client *http.Transport
	policy policy
	epoch  time.Time // windows count in durations since epoch (monotonic)

	notify   chan struct{}
	outcomes chan store.Outcome
	writerWG sync.WaitGroup
	attempts sync.WaitGroup
	// work hands attempts to the workers: goroutines kept between attempts, so that each
	// attempt does not start a goroutine and grow its stack through net/http again (stack
	// copying was 4% of the pipeline's CPU). It never blocks: it holds room for Concurrency
	// attempts, and no more are in flight.
	work chan attemptTask

	mu       sync.Mutex
	hooks    map[int64]*hook
	ready    fifo        // hooks that may send now
	waiting  waitHeap    // hooks whose window opens later
	timer    *time.Timer // wakes the pump for waiting
	bodies   map[string]*body
	held     map[int64]struct{}           // claimed deliveries in memory, queued or in flight
	running  int                          // attempts in flight
	workers  int                          // goroutines reading work; never fewer than running
	more     bool                         // the last claim filled its room: more may be due in the store
	cpuState cpuState                     // see watchCPU
	limit    engineLimit                  // how many attempts may be in flight in all
	quickest quickest                     // each destination's quickest answer
	cpu      func() (time.Duration, bool) // the process's CPU time so far: processCPU but in tests
	stopping bool

	shared *shared // nil unless the store is shared by several nodes
}

type hook struct {
	id      int64
	w       store.Webhook // zero ID until loaded
	deleted bool
	queue   []*job
	running int
	conc    concurrencyLimit // how many of its attempts may be in flight
	dest    string           // destKey of destURL
	destURL string
	win     window
	cancels map[*job]context.CancelFunc
	pace    pace            // how long its attempts take
	signer  *webhook.Signer // signs with signKey
	signKey string
	ready   bool          // in Engine.ready
	wakeAt  time.Duration // in Engine.waiting when > 0
	heapIdx int

	// Shared stores only (see shared.go).
	grants    []*grant
	asking    bool          // slots were asked of the store
	slotRetry time.Duration // mono; the store had none to give before this
}

// pace is a webhook's attempt duration as the engine plans with it: a moving average of
// attempt durations (avg), and the pace it plans with (settled; 0 = none yet, and then only
// the bounds on memory limit what it holds). A fall of the average counts at once; a rise, and
// the first pace of all, once the average has stayed there for paceSettles.
//
// A slowdown that does not hold is not the webhook's pace. After a stall (requests that hung
// for seconds while the receiver was down, then all answered at once), the first answers carry
// the stall's duration and raise the average at once; the answers that follow, fast again,
// bring it back within milliseconds. Planned with the raised average, the webhook would have
// room in memory for about WebhookConcurrency deliveries and the rest of its backlog would be
// deferred across a minute: hookrelay bench's publish scenario, whose receivers hold every
// request while it publishes, made 30,000 deferrals and took 67 s instead of 8 s to deliver
// 100,000 in 4 of 10 runs. A webhook that has really slowed down keeps the raised average, and
// after paceSettles it is planned with it.
type pace struct {
	avg, settled time.Duration
	driftSince   time.Duration // mono; since when avg has been away from settled (0: it is not)
}

// paceSettles is how long the average must stay away from the settled pace to replace it.
const paceSettles = time.Second

// observe takes an attempt's duration d, ended at mono.
func (p *pace) observe(d, mono time.Duration) {
	if p.avg == 0 {
		p.avg = d
	} else {
		p.avg = (p.avg*7 + d) / 8
	}
	switch {
	case p.settled > 0 && p.avg <= 2*p.settled && p.avg >= p.settled/2:
		p.driftSince = 0
	case p.settled > 0 && p.avg < p.settled/2:
		// Faster: planning with it at once risks no more than more deliveries held in
		// memory (within MaxHeld) and deferrals that come back sooner.
		p.settled, p.driftSince = p.avg, 0
	case p.driftSince == 0:
		p.driftSince = mono
	case mono-p.driftSince >= paceSettles:
		p.settled, p.driftSince = p.avg, 0
	}
}

type job struct {
	store.Job
	body     *body
	queuedAt time.Time
	grant    *grant // the slot it was sent on, on a shared store
}

// body is an event's payload shared by its deliveries in memory.
type body struct {
	id   string
	b    []byte
	refs int
}

// New returns an engine; Run starts it.
func New(cfg Config) *Engine {
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 512
	}
	if cfg.WebhookConcurrency == 0 {
		cfg.WebhookConcurrency = 64
	}
	cfg.WebhookConcurrency = min(cfg.WebhookConcurrency, cfg.Concurrency)
	if cfg.MaxHeld == 0 {
		cfg.MaxHeld = max(32768, 4*cfg.Concurrency)
	}
	if cfg.ClaimBatch == 0 {
		cfg.ClaimBatch = 1024
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Lease == 0 {
		cfg.Lease = 2*cfg.Timeout + 10*time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(cfg.Store)
	}
	e := &Engine{
		cfg:      cfg,
		st:       cfg.Store,
		log:      cfg.Logger,
		m:        cfg.Metrics,
		client:   newTransport(cfg.Timeout, cfg.AllowPrivate, cfg.Concurrency),
		policy:   policy{schedule: cfg.RetrySchedule, jitter: defaultJitter},
		epoch:    time.Now(),
		notify:   make(chan struct{}, 1),
		outcomes: make(chan store.Outcome, 4096),
		work:     make(chan attemptTask, cfg.Concurrency),
		hooks:    map[int64]*hook{},
		bodies:   map[string]*body{},
		held:     map[int64]struct{}{},
		cpu:      processCPU,
		cpuState: cpuState{saturated: true}, // until watchCPU has looked twice
		limit:    newEngineLimit(cfg.Concurrency),
	}
	e.timer = time.AfterFunc(time.Hour, e.wake)
	e.timer.Stop()
	if sh, ok := cfg.Store.(store.Shared); ok {
		e.shared = &shared{st: sh, kick: make(chan struct{}, 1)}
	}
	return e
}

// mono is the engine's monotonic clock.
func (e *Engine) mono() time.Duration { return time.Since(e.epoch) }

// Notify says deliveries may have become due; the engine claims them at once.
func (e *Engine) Notify() {
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. Then it starts no new attempt, gives back the deliveries it
// holds but has not started, waits for the attempts in flight (each bounded by the timeout),
// writes every outcome and returns.
func (e *Engine) Run(ctx context.Context) error {
	e.writerWG.Add(1)
	go e.writeOutcomes()
	var cpuWG sync.WaitGroup
	cpuWG.Go(func() { e.watchCPU(ctx) })
	defer cpuWG.Wait()
	slotsCtx, stopSlots := context.WithCancel(context.WithoutCancel(ctx))
	var sharedWG sync.WaitGroup
	if e.shared != nil {
		sharedWG.Go(func() { e.listen(ctx) })
		sharedWG.Go(func() { e.slotLoop(slotsCtx) })
	}
	e.claimLoop(ctx)

	e.mu.Lock()
	e.stopping = true
	e.timer.Stop()
	now := time.Now()
	var released int
	for _, h := range e.hooks {
		for _, j := range h.queue {
			e.giveBack(j.DeliveryID, now)
			e.dropLocked(j)
			released++
		}
		h.queue = nil
	}
	e.m.Held.Set(float64(len(e.held)))
	inflight := e.running
	e.mu.Unlock()
	e.log.Info("delivery engine stopping", "released", released, "in_flight", inflight)

	e.attempts.Wait()
	// Its connections end with it, not when they time out: keep-alive connections left idle
	// hold their goroutines and buffers here, and a connection at each receiver, for 90 s.
	e.client.CloseIdleConnections()
	close(e.work) // the workers end
	stopSlots()   // after the last attempt, so its grant is settled
	sharedWG.Wait()
	close(e.outcomes)
	e.writerWG.Wait()
	return nil
}

// claimLoop claims due deliveries whenever there is room for them and some may be due: when
// told (Notify), when the last claim was full and room was made, and every PollInterval.
func (e *Engine) claimLoop(ctx context.Context) {
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	for {
		for {
			e.mu.Lock()
			room := min(e.cfg.MaxHeld-len(e.held), e.cfg.ClaimBatch)
			e.mu.Unlock()
			if room < e.minClaim() {
				break // the attempt that makes the room wakes this loop
			}
			// A claim runs to its end even if ctx ends meanwhile: what it leased is then queued
			// and given back in order, rather than left leased until the lease runs out.
			n, err := e.claim(context.WithoutCancel(ctx), room)
			if err != nil {
				e.log.Error("claim deliveries", "err", err)
				break
			}
			e.mu.Lock()
			e.more = n == room
			e.mu.Unlock()
			if n < room || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-e.notify:
		case <-poll.C:
			e.sweep()
		}
	}
}

// minClaim is the least room a claim waits for. Each claim is a commit of the store (with its
// sync): claiming whatever room the last attempts left made claims of a few deliveries each
// while the engine was full, 1,628 claims for a throughput run's 200,000 deliveries, more
// commits than its 1,000 publishes. Waiting for a quarter of a ClaimBatch made it 94 claims,
// and the throughput scenario's ratio to the baseline 0.53 – 0.64 against 0.46 – 0.52 in four
// alternating pairs (BENCHMARKS.md, fourteenth session).
func (e *Engine) minClaim() int { return max(1, min(e.cfg.ClaimBatch, e.cfg.MaxHeld)/4) }

// claim takes up to limit due deliveries and queues them; it returns how many it took.
func (e *Engine) claim(ctx context.Context, limit int) (int, error) {
	now := time.Now()
	jobs, err := e.st.Claim(ctx, store.ClaimParams{Owner: e.cfg.Owner, Now: now, Limit: limit, LeaseUntil: now.Add(e.cfg.Lease)})
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	if err := e.prepare(ctx, jobs, nil); err != nil {
		// Leave the claims to expire: the deliveries come back when their lease ends.
		return len(jobs), err
	}
	return len(jobs), nil
}

// Lease says whether the engine takes deliveries published here straight from the publisher
// (Adopt), and the lease to store them under. It does while it has room for them.
func (e *Engine) Lease() (owner string, until time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// While the store holds more due deliveries than the claims took, the last minClaim of the
	// room is left to the claims: publishes taking every slot an attempt freed would leave the
	// older deliveries in the store while new ones kept coming.
	if e.stopping || len(e.held) >= e.cfg.MaxHeld || (e.more && len(e.held) >= e.cfg.MaxHeld-e.minClaim()) {
		return "", time.Time{}, false
	}
	return e.cfg.Owner, time.Now().Add(e.cfg.Lease), true
}

// Adopt queues deliveries just published under the engine's Lease, with their events'
// bodies: no claim and no read of the store for them, so a fresh event is on its way as soon
// as it is committed.
func (e *Engine) Adopt(ctx context.Context, jobs []store.Job, bodies map[string][]byte) {
	if len(jobs) == 0 {
		return
	}
	if err := e.prepare(ctx, jobs, bodies); err != nil {
		// They are leased to us: give them back so that a claim takes them at once.
		e.log.Warn("adopt published deliveries; giving them back", "count", len(jobs), "err", err)
		now := time.Now()
		for _, j := range jobs {
			e.giveBack(j.DeliveryID, now)
		}
		e.Notify()
	}
}

// prepare loads what the jobs need (bodies unless given, webhook settings) and queues them.
func (e *Engine) prepare(ctx context.Context, jobs []store.Job, bodies map[string][]byte) error {
	var eventIDs []string
	var needHooks []int64
	seenEvent := map[string]bool{}
	seenHook := map[int64]bool{}
	e.mu.Lock()
	for _, j := range jobs {
		if !seenEvent[j.EventID] && bodies[j.EventID] == nil {
			seenEvent[j.EventID] = true
			eventIDs = append(eventIDs, j.EventID)
		}
		if seenHook[j.WebhookID] || j.WebhookVersion == 0 {
			continue
		}
		seenHook[j.WebhookID] = true
		if h := e.hooks[j.WebhookID]; h == nil || (!h.deleted && h.w.Version < j.WebhookVersion) {
			needHooks = append(needHooks, j.WebhookID)
		}
	}
	e.mu.Unlock()

	// Bodies already in memory are read again rather than pinned: simpler, and one query per
	// claim costs little next to the claim itself.
	loaded := bodies
	if len(eventIDs) > 0 {
		var err error
		if loaded, err = e.st.EventBodies(ctx, eventIDs); err != nil {
			return fmt.Errorf("load event bodies: %w", err)
		}
		for id, b := range bodies {
			loaded[id] = b
		}
	}
	var hooks map[int64]store.Webhook // a needed webhook missing from it was deleted
	if len(needHooks) > 0 {
		var err error
		if hooks, err = e.st.WebhooksByID(ctx, needHooks); err != nil {
			return fmt.Errorf("load webhooks: %w", err)
		}
	}

	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		// Adopted after the stop began: give them back, due now.
		for _, j := range jobs {
			e.giveBack(j.DeliveryID, now)
		}
		return nil
	}
	for id, w := range hooks {
		if h := e.hookLocked(id); w.Version > h.w.Version {
			h.w = w
		}
	}
	for _, id := range needHooks {
		if _, ok := hooks[id]; !ok {
			e.hookLocked(id).deleted = true
		}
	}
	var created []*body
	for _, j := range jobs {
		h := e.hookLocked(j.WebhookID)
		if j.WebhookVersion == 0 {
			h.deleted = true
		}
		b := e.bodies[j.EventID]
		if b == nil {
			if raw, ok := loaded[j.EventID]; ok {
				b = &body{id: j.EventID, b: raw}
				e.bodies[j.EventID] = b
				created = append(created, b)
			}
		}
		if _, dup := e.held[j.DeliveryID]; dup {
			// Claimed again while still held here (its lease ran out while it waited): the
			// copy in memory goes on, under the lease this claim just renewed.
			continue
		}
		n, room := len(h.queue), e.roomLocked(h)
		switch {
		case h.deleted:
			e.finishUnattempted(j, store.StatusCancelled, "webhook deleted", now)
		case h.w.Status == store.WebhookDisabled:
			e.finishUnattempted(j, store.StatusCancelled, "webhook disabled", now)
		case b == nil:
			e.finishUnattempted(j, store.StatusFailed, "event body missing", now)
		case n < room:
			e.queueLocked(h, j, b, now)
		case n > 0 && room > 0 && h.queue[n-1].CreatedAt.After(j.CreatedAt):
			// The older delivery takes the place of the newest queued one, which goes back
			// instead: whatever waits in the store, the oldest go first.
			newest := h.queue[n-1]
			e.deferLocked(h, newest.DeliveryID, n-room+1, now)
			e.dropLocked(newest)
			h.queue[n-1] = nil
			h.queue = h.queue[:n-1]
			e.queueLocked(h, j, b, now)
		default:
			e.deferLocked(h, j.DeliveryID, n-room+1, now)
		}
	}
	for _, b := range created {
		if b.refs == 0 { // every job of the event was deferred or ended
			delete(e.bodies, b.id)
		}
	}
	e.m.Held.Set(float64(len(e.held)))
	e.pumpLocked()
	return nil
}

// finishUnattempted ends a claimed delivery without an attempt.
func (e *Engine) finishUnattempted(j store.Job, status, reason string, now time.Time) {
	e.outcomes <- store.Outcome{DeliveryID: j.DeliveryID, Owner: e.cfg.Owner, Status: status, Error: reason, At: now}
	e.m.Outcomes.WithLabelValues(status).Inc()
}

// giveBack returns a delivery this engine holds to the store, due at now, with no attempt made.
func (e *Engine) giveBack(deliveryID int64, now time.Time) {
	e.outcomes <- store.Outcome{DeliveryID: deliveryID, Owner: e.cfg.Owner, Status: store.StatusPending, NextAttemptAt: now, At: now}
}

// queueLocked holds j in memory, queued on its webhook.
func (e *Engine) queueLocked(h *hook, j store.Job, b *body, now time.Time) {
	b.refs++
	e.held[j.DeliveryID] = struct{}{}
	h.queue = append(h.queue, &job{Job: j, body: b, queuedAt: now})
	e.considerLocked(h)
}

func (e *Engine) hookLocked(id int64) *hook {
	h := e.hooks[id]
	if h == nil {
		h = &hook{id: id, cancels: map[*job]context.CancelFunc{}, heapIdx: -1,
			conc: newConcurrencyLimit(e.cfg.WebhookConcurrency)}
		e.hooks[id] = h
	}
	return h
}

// horizon is how far ahead a webhook's queue in memory may reach; beyond it deliveries wait in
// the store, so memory stays bounded and leases stay short.
const horizon = 5 * time.Second

// roomLocked is how many deliveries h may have queued in memory: what it can send within the
// horizon, by its throughput window and by its concurrency at its recent pace; none while its
// window stays shut beyond the horizon. Its concurrency counts as WebhookConcurrency, what its
// limit may grow to: a limit held low by a saturated CPU can rise within a second.
func (e *Engine) roomLocked(h *hook) int {
	limit := h.w.MaxThroughputPerMinute
	mono := e.mono()
	if ok, at := h.win.allow(mono, limit); !ok && (at < 0 || at-mono > horizon) {
		return 0
	}
	if h.slotRetry-mono > horizon {
		return 0
	}
	room := max(1, h.win.free(mono, limit), int(int64(limit)*int64(horizon)/int64(span)))
	if avg := h.pace.settled; avg > 0 {
		room = min(room, max(e.cfg.WebhookConcurrency, int(int64(e.cfg.WebhookConcurrency)*int64(horizon)/int64(avg))))
	}
	return min(room, e.cfg.MaxHeld/4)
}

// deferLocked gives a claimed delivery back to the store, due when its webhook can take it:
// pos counts the deliveries ahead of it that the webhook cannot send within the horizon either.
func (e *Engine) deferLocked(h *hook, deliveryID int64, pos int, now time.Time) {
	limit := h.w.MaxThroughputPerMinute
	perItem := span / time.Duration(limit)
	if avg := h.pace.settled; avg > 0 {
		perItem = max(perItem, avg/time.Duration(e.cfg.WebhookConcurrency))
	}
	mono := e.mono()
	start := now.Add(horizon)
	switch ok, at := h.win.allow(mono, limit); {
	case !ok && at < 0:
		// Every slot is taken by a request still running: none opens before a span after it ends.
		start = now.Add(span)
	case !ok:
		start = now.Add(max(at-mono, horizon))
	}
	if wait := h.slotRetry - mono; wait > 0 {
		start = later(start, now.Add(max(wait, horizon)))
	}
	// However slow the webhook, a deferred delivery comes back within a minute and a horizon,
	// to be weighed again with what is due then.
	next := start.Add(min(time.Duration(pos-1)*perItem, span))
	e.outcomes <- store.Outcome{DeliveryID: deliveryID, Owner: e.cfg.Owner, Status: store.StatusPending, NextAttemptAt: next, At: now}
	e.m.Outcomes.WithLabelValues("deferred").Inc()
}

// maxQueued is the longest a delivery waits in memory before it is given back to the store;
// well within the lease, so no other node takes it over while it waits here.
func (e *Engine) maxQueued() time.Duration { return min(e.cfg.Lease/2, 4*horizon) }

// sweep gives back to the store what waits in memory beyond its webhook's room (a window that
// shut, a PATCH that lowered the limit) or longer than maxQueued.
func (e *Engine) sweep() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	oldest := now.Add(-e.maxQueued())
	for _, h := range e.hooks {
		if len(h.queue) == 0 {
			continue
		}
		keep := e.roomLocked(h)
		if h.queue[0].queuedAt.Before(oldest) {
			keep = 0
		}
		if len(h.queue) <= keep {
			continue
		}
		for i, j := range h.queue[keep:] {
			e.deferLocked(h, j.DeliveryID, i+1, now)
			e.dropLocked(j)
		}
		clear(h.queue[keep:])
		h.queue = h.queue[:keep]
	}
	e.m.Held.Set(float64(len(e.held)))
}

// dropLocked forgets a job held in memory.
func (e *Engine) dropLocked(j *job) {
	delete(e.held, j.DeliveryID)
	e.releaseBodyLocked(j.body)
}

// considerLocked puts h where it belongs: ready if it may send now, waiting if its window
// opens later, nowhere if it has nothing to send or waits for its own attempts to end.
func (e *Engine) considerLocked(h *hook) {
	if h.ready || h.deleted || len(h.queue) == 0 || h.running >= h.conc.n {
		return
	}
	ok, at := e.allowLocked(h, e.mono())
	switch {
	case ok:
		if h.heapIdx >= 0 {
			e.waiting.remove(h)
		}
		h.ready = true
		e.ready.push(h)
	case at > 0:
		if h.heapIdx >= 0 {
			if h.wakeAt == at {
				return
			}
			e.waiting.remove(h)
		}
		h.wakeAt = at
		e.waiting.add(h)
		e.armTimerLocked()
	}
}

func (e *Engine) armTimerLocked() {
	if next := e.waiting.peek(); next != nil {
		e.timer.Reset(max(next.wakeAt-e.mono(), time.Millisecond))
	}
}

// wake runs when the earliest waiting window opens.
func (e *Engine) wake() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.mono()
	for {
		h := e.waiting.peek()
		if h == nil || h.wakeAt > now {
			break
		}
		e.waiting.remove(h)
		e.considerLocked(h)
	}
	e.armTimerLocked()
	e.pumpLocked()
}

// pumpLocked starts attempts while there are free slots and ready webhooks, one delivery per
// webhook in turn.
func (e *Engine) pumpLocked() {
	for !e.stopping && e.running < e.limit.n {
		h := e.ready.pop()
		if h == nil {
			return
		}
		h.ready = false
		if h.deleted || len(h.queue) == 0 || h.running >= h.conc.n {
			continue
		}
		if ok, _ := e.allowLocked(h, e.mono()); !ok {
			e.considerLocked(h)
			continue
		}
		j := h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
		e.startLocked(h, j)
		e.considerLocked(h)
	}
}

func (e *Engine) startLocked(h *hook, j *job) {
	e.useSlotLocked(h, j, e.mono())
	h.win.start()
	h.running++
	e.running++
	e.m.InFlight.Set(float64(e.running))
	// The attempt's one context: its timeout, and the cancel a delete or disable calls.
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	h.cancels[j] = cancel
	w := h.w
	if h.signer == nil || h.signKey != w.Secret {
		h.signer, h.signKey = webhook.NewSigner(w.Secret), w.Secret
	}
	e.attempts.Add(1)
	e.work <- attemptTask{ctx: ctx, h: h, w: w, signer: h.signer, j: j}
	// Every attempt in flight is queued or with a worker, so with at least as many workers
	// as attempts, each queued one has a worker that is idle or about to be.
	if e.workers < e.running {
		e.workers++
		go e.worker()
	}
}

// attemptTask is one attempt for a worker to make.
type attemptTask struct {
	ctx    context.Context
	h      *hook
	w      store.Webhook
	signer *webhook.Signer
	j      *job
}

// worker makes attempts until Run closes work.
func (e *Engine) worker() {
	for t := range e.work {
		e.attempt(t.ctx, t.h, t.w, t.signer, t.j)
	}
}

// attempt sends one delivery and records what came of it.
func (e *Engine) attempt(ctx context.Context, h *hook, w store.Webhook, signer *webhook.Signer, j *job) {
	defer e.attempts.Done()
	n := j.Attempts + 1
	res := send(ctx, e.client, e.cfg.Timeout, request{
		URL: w.URL, Signer: signer, Body: j.body.b, EventID: j.EventID, EventType: j.Event, WebhookID: w.ID, Attempt: n,
	})
	if ctx.Err() == context.Canceled && res.StatusCode == 0 {
		res.Error = "cancelled: webhook deleted or disabled"
	}
	now := time.Now()
	status, next := e.policy.decide(w, n, res, now)
	a := store.Attempt{
		Attempt:      n,
		At:           now.Add(-res.Duration),
		StatusCode:   res.StatusCode,
		DurationMs:   res.Duration.Milliseconds(),
		Error:        res.Error,
		ResponseBody: res.Body,
	}
	e.outcomes <- store.Outcome{DeliveryID: j.DeliveryID, Owner: e.cfg.Owner, Attempt: &a, Status: status, NextAttemptAt: next, At: now}
	e.observe(w, status, a, res)

	e.mu.Lock()
	mono := e.mono()
	h.win.finish(mono)
	e.endSlotLocked(h, j, mono)
	h.running--
	e.running--
	if cancel := h.cancels[j]; cancel != nil {
		cancel() // stops its timer
		delete(h.cancels, j)
	}
	h.pace.observe(res.Duration, mono)
	switch {
	case res.StatusCode == 0 && ctx.Err() == context.DeadlineExceeded:
		// No answer: the webhook's limit counts it as slow; the engine's limit in all, which
		// judges how long answers wait for this CPU, leaves it out.
		h.conc.timedOut(mono, e.cfg.WebhookConcurrency, e.cpuState)
	case res.StatusCode != 0:
		h.conc.answered(res.Duration, mono, e.cfg.WebhookConcurrency, e.cpuState)
		if h.destURL != w.URL {
			h.dest, h.destURL = destKey(w.URL), w.URL
		}
		if q := e.quickest.answered(h.dest, res.Duration, mono); q > 0 {
			e.limit.answered(float64(res.Duration)/float64(q), e.cfg.Concurrency, e.cpuState)
		}
	}
	e.dropLocked(j)
	e.considerLocked(h)
	e.pumpLocked()
	e.m.InFlight.Set(float64(e.running))
	e.m.Held.Set(float64(len(e.held)))
	wakeClaimer := e.more && len(e.held) <= e.cfg.MaxHeld-e.minClaim()
	e.mu.Unlock()
	if wakeClaimer {
		e.Notify()
	}
}

func (e *Engine) observe(w store.Webhook, status string, a store.Attempt, res result) {
	code := "none"
	if res.StatusCode != 0 {
		code = fmt.Sprint(res.StatusCode)
	}
	e.m.Attempts.WithLabelValues(code).Inc()
	e.m.AttemptDuration.Observe(res.Duration.Seconds())
	outcome := status
	if status == store.StatusPending {
		outcome = "retry"
	}
	e.m.Outcomes.WithLabelValues(outcome).Inc()
	if e.cfg.Observer != nil {
		e.cfg.Observer.Attempted(w, status, a)
	}
}

func (e *Engine) releaseBodyLocked(b *body) {
	b.refs--
	if b.refs <= 0 {
		delete(e.bodies, b.id)
	}
}

// WebhookChanged makes later attempts use w; if w is disabled, its queued deliveries are
// dropped (the store cancelled them in the same change) and its attempts in flight aborted.
func (e *Engine) WebhookChanged(w store.Webhook) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.hooks[w.ID]
	if h == nil || h.deleted || w.Version <= h.w.Version {
		return
	}
	h.w = w
	if h.heapIdx >= 0 {
		e.waiting.remove(h)
	}
	if w.Status == store.WebhookDisabled {
		// The store cancelled its pending deliveries with the change: forget the queued ones
		// and abort the ones in flight, as for a delete.
		for _, j := range h.queue {
			e.dropLocked(j)
		}
		h.queue = nil
		for _, cancel := range h.cancels {
			cancel()
		}
		e.m.Held.Set(float64(len(e.held)))
	}
	e.considerLocked(h)
	e.pumpLocked()
}

// WebhookDeleted stops everything for webhook id: queued deliveries are dropped (the store has
// cancelled them) and attempts in flight are cancelled. Once it returns, no request to the
// webhook begins.
func (e *Engine) WebhookDeleted(id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.hookLocked(id)
	h.deleted = true
	for _, j := range h.queue {
		e.dropLocked(j)
	}
	h.queue = nil
	for _, cancel := range h.cancels {
		cancel()
	}
	if h.heapIdx >= 0 {
		e.waiting.remove(h)
	}
	e.m.Held.Set(float64(len(e.held)))
}

// outcomeInterval is the least time between two writes of outcomes, unless outcomeBatch of
// them are waiting: that many go at once. Outcomes that come in between wait and share the
// next write: under load this makes a few large commits instead of one per fsync, and each
// commit costs as much CPU as a few hundred outcomes. Nothing waits for an outcome to be
// written (the delivery has already left memory), so the delay costs no latency; outcomes not
// yet written when the process dies are retried once their leases end, as ever. 50 ms rather
// than 10 ms: at 14,000 deliveries/s a fifth of the outcome writes, and the throughput
// scenario's ratio to the baseline 0.52 against 0.47 at the median of seven alternating pairs
// (BENCHMARKS.md, fourteenth session); 100 ms did no better (at that rate its batches would
// pass the 1,024 outcomes one write takes).
const outcomeInterval = 50 * time.Millisecond

// outcomeBatch is the most outcomes one write takes.
const outcomeBatch = 1024

// writeOutcomes writes outcomes in batches until the channel closes. A failed write is retried:
// the outcomes are only in memory, and losing them would repeat attempts after the leases end.
func (e *Engine) writeOutcomes() {
	defer e.writerWG.Done()
	batch := make([]store.Outcome, 0, outcomeBatch)
	var last time.Time // when the last write began
	for o := range e.outcomes {
		batch = append(batch[:0], o)
		open := true
		if wait := time.Until(last.Add(outcomeInterval)); wait > 0 {
			timer := time.NewTimer(wait)
		gather:
			for len(batch) < cap(batch) {
				select {
				case o, ok := <-e.outcomes:
					if !ok {
						open = false
						break gather
					}
					batch = append(batch, o)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
	drain:
		for open && len(batch) < cap(batch) {
			select {
			case o, ok := <-e.outcomes:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		last = time.Now()
		for try := 0; ; try++ {
			err := e.st.Complete(context.Background(), batch)
			if err == nil {
				break
			}
			e.log.Error("write delivery outcomes", "count", len(batch), "err", err, "try", try+1)
			if try >= 20 {
				e.log.Error("giving up on delivery outcomes; their deliveries will be retried when their leases end", "count", len(batch))
				break
			}
			time.Sleep(min(time.Duration(1<<try)*100*time.Millisecond, 10*time.Second))
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
