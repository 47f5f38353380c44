package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// On a store several nodes share, a webhook's throughput window lives in the store: before a
// node sends to a webhook it takes slots of that window from the store (a few at a time, so the
// store is asked once per batch of requests, not once per request), and once the requests of a
// grant have ended it settles the grant: how many slots it used and for how much longer they
// count (60 s after the last of them ended). Slots not used are given back. A node that dies
// holding a grant leaves it counting until its provisional expiry, never less than the truth.
//
// Each node also keeps its own window, as on a single node; it only ever allows more than the
// store, so it costs nothing and keeps a node exact when it is the only one sending.

// grantTTL is how long a node may start requests on a grant it was given.
const grantTTL = 2 * time.Second

// maxGrant bounds the slots one grant takes, so one node does not take a whole large window
// that another could have used.
const maxGrant = 256

// grantSize is how many slots a node asks for: enough for the requests it has queued for the
// webhook, and at least a 64th of the webhook's limit. A node's queue for a webhook is short
// when deliveries trickle in, and shorter the more nodes share the traffic: asking for it alone
// took three nodes a grant per 29 requests where one node took one per 238. A
// grant left partly unused holds back at most that 64th of the window, for about grantTTL
// (slotLoop settles expired grants every 100 ms).
func grantSize(limit, queued int) int {
	return min(limit, maxGrant, max(1, queued, limit/64))
}

// grant is a node's share of a webhook's window.
type grant struct {
	id         int64
	left       int // slots not used yet
	used       int
	running    int           // requests started on it and not ended
	validUntil time.Duration // mono; no request starts on it after this
	lastEnd    time.Duration // mono end of its last finished request
}

// shared is the engine's part for shared stores.
type shared struct {
	st      store.Shared
	kick    chan struct{}
	wanting []*hook            // hooks waiting for slots (hook.asking set)
	settles []store.SlotSettle // grants to settle
}

// slotsState tells allowLocked's callers what a hook waits for.
const (
	waitRunning = -1 // its own requests in flight fill the window: one must end
	waitSlots   = -2 // slots were asked of the store: the answer comes
)

// allowLocked reports whether h may start a request now; if not, when it may (a time on the
// mono clock), or waitRunning / waitSlots.
func (e *Engine) allowLocked(h *hook, now time.Duration) (bool, time.Duration) {
	ok, at := h.win.allow(now, h.w.MaxThroughputPerMinute)
	if !ok {
		if at < 0 {
			return false, waitRunning
		}
		return false, at
	}
	if e.shared == nil || h.usableGrant(now) != nil {
		return true, 0
	}
	if h.slotRetry > now {
		return false, h.slotRetry
	}
	e.askSlotsLocked(h)
	return false, waitSlots
}

// usableGrant is the grant the next request of h may start on, if any.
func (h *hook) usableGrant(now time.Duration) *grant {
	for _, g := range h.grants {
		if g.left > 0 && now < g.validUntil {
			return g
		}
	}
	return nil
}

func (e *Engine) askSlotsLocked(h *hook) {
	if h.asking {
		return
	}
	h.asking = true
	e.shared.wanting = append(e.shared.wanting, h)
	select {
	case e.shared.kick <- struct{}{}:
	default:
	}
}

// useSlotLocked takes a slot of h's grant for a request starting now.
func (e *Engine) useSlotLocked(h *hook, j *job, now time.Duration) {
	if e.shared == nil {
		return
	}
	g := h.usableGrant(now)
	g.left--
	g.used++
	g.running++
	j.grant = g
}

// endSlotLocked records that the request of j ended, and settles its grant when it is done.
func (e *Engine) endSlotLocked(h *hook, j *job, now time.Duration) {
	g := j.grant
	if g == nil {
		return
	}
	g.running--
	g.lastEnd = max(g.lastEnd, now)
	if g.running == 0 && (g.left == 0 || now >= g.validUntil) {
		e.settleLocked(h, g, now)
	}
}

// settleLocked queues the settlement of g and forgets it.
func (e *Engine) settleLocked(h *hook, g *grant, now time.Duration) {
	for i, x := range h.grants {
		if x == g {
			h.grants = append(h.grants[:i], h.grants[i+1:]...)
			break
		}
	}
	s := store.SlotSettle{ID: g.id, Used: g.used}
	if g.used > 0 {
		// The used slots count until a span after the last request ended, measured on this
		// node's monotonic clock and handed to the store as a duration from its own clock.
		s.ValidFor = max(span-(now-g.lastEnd), 0)
	}
	e.shared.settles = append(e.shared.settles, s)
	select {
	case e.shared.kick <- struct{}{}:
	default:
	}
}

// slotLoop asks the store for slots and settles grants, in batches, until ctx ends; then it
// settles what it still holds.
func (e *Engine) slotLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			e.settleAll()
			return
		case <-e.shared.kick:
		case <-tick.C:
		}
		e.exchangeSlots(ctx)
	}
}

// exchangeSlots makes one round of asking and settling.
func (e *Engine) exchangeSlots(ctx context.Context) {
	e.mu.Lock()
	now := e.mono()
	// Grants whose time ran out with slots left and nothing running: give those slots back.
	for _, h := range e.hooks {
		for i := len(h.grants) - 1; i >= 0; i-- {
			if g := h.grants[i]; g.running == 0 && now >= g.validUntil {
				e.settleLocked(h, g, now)
			}
		}
	}
	hooks := e.shared.wanting
	e.shared.wanting = nil
	reqs := make([]store.SlotRequest, 0, len(hooks))
	for _, h := range hooks {
		reqs = append(reqs, store.SlotRequest{WebhookID: h.id, Limit: h.w.MaxThroughputPerMinute,
			Want: grantSize(h.w.MaxThroughputPerMinute, len(h.queue)),
			// Never settled (the node died): its requests all ended within grantTTL plus a
			// timeout, so the slots count a span after that, and a little more.
			ValidFor: grantTTL + e.cfg.Timeout + span + 5*time.Second})
	}
	settles := e.shared.settles
	e.shared.settles = nil
	e.mu.Unlock()

	if len(settles) > 0 {
		if err := e.shared.st.SettleSlots(ctx, settles); err != nil && ctx.Err() == nil {
			// Unsettled grants keep counting until their provisional end: slower, never wrong.
			e.log.Warn("settle throughput slots", "grants", len(settles), "err", err)
		}
	}
	if len(reqs) == 0 {
		return
	}
	grants, err := e.shared.st.TakeSlots(ctx, reqs)
	e.mu.Lock()
	defer e.mu.Unlock()
	now = e.mono()
	for i, h := range hooks {
		h.asking = false
		switch {
		case err != nil:
			h.slotRetry = now + time.Second
		case grants[i].Granted > 0:
			h.grants = append(h.grants, &grant{id: grants[i].ID, left: grants[i].Granted, validUntil: now + grantTTL})
		default:
			h.slotRetry = now + max(grants[i].RetryIn, 10*time.Millisecond)
		}
		e.considerLocked(h)
	}
	if err != nil && ctx.Err() == nil {
		e.log.Error("take throughput slots", "webhooks", len(reqs), "err", err)
	}
	e.pumpLocked()
}

// settleAll settles every grant held, when the engine stops.
func (e *Engine) settleAll() {
	e.mu.Lock()
	now := e.mono()
	for _, h := range e.hooks {
		for len(h.grants) > 0 {
			e.settleLocked(h, h.grants[0], now)
		}
	}
	settles := e.shared.settles
	e.shared.settles = nil
	e.mu.Unlock()
	if len(settles) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.shared.st.SettleSlots(ctx, settles); err != nil {
		e.log.Warn("settle throughput slots at stop", "err", err)
	}
}

// takeOneSlot takes a single slot for a test send, directly from the store.
func (e *Engine) takeOneSlot(ctx context.Context, w store.Webhook) (int64, time.Duration, error) {
	grants, err := e.shared.st.TakeSlots(ctx, []store.SlotRequest{{WebhookID: w.ID, Limit: w.MaxThroughputPerMinute, Want: 1,
		ValidFor: e.cfg.Timeout + span + 5*time.Second}})
	if err != nil {
		return 0, 0, err
	}
	if len(grants) != 1 {
		return 0, 0, errors.New("take throughput slot: no answer")
	}
	return grants[0].ID, grants[0].RetryIn, nil
}

// listen follows the changes other nodes announce until ctx ends.
func (e *Engine) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := e.shared.st.Listen(ctx, func(c store.Change) {
			if c.Due {
				e.Notify()
				return
			}
			e.reloadWebhook(ctx, c.WebhookID)
		})
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("listen for changes; retrying in 1s", "err", err)
		// Changes missed meanwhile are caught by the poll and by claims (webhook versions).
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// reloadWebhook makes the engine follow a webhook changed elsewhere.
func (e *Engine) reloadWebhook(ctx context.Context, id int64) {
	e.mu.Lock()
	_, known := e.hooks[id]
	e.mu.Unlock()
	if !known {
		return
	}
	w, err := e.st.WebhookByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e.WebhookDeleted(id)
	case err == nil:
		e.WebhookChanged(w)
	default:
		e.log.Warn("reload changed webhook", "webhook", id, "err", err)
	}
}
