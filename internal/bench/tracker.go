package bench

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// tracker is what a run knows of its events and deliveries: when each event's publish request
// was sent, the id its answer gave, and for every (event, webhook) pair what the receivers got.
// Its arrays are sized once and live off the Go heap (offHeap), so recording an arrival takes no
// lock and no allocation, and the bench's bookkeeping does not change how the pipeline's heap
// grows. Times are kept in ticks of 10µs since epoch (up to 11 hours).
type tracker struct {
	lay     *layout
	payload int
	epoch   time.Time
	events  int // capacity, in events

	// Per event.
	sent []atomic.Uint32 // tick the publish request was sent; 0 = not yet
	ids  []uuid.UUID     // from the publish answer, written by the publisher; read once it is done
	seen []atomic.Uint64 // idHash of the X-Event-Id of the first arrival; 0 = none yet

	// Per pair: event i, slot s is pairs[i*fanout+s].
	pairs []pair
	free  []func()

	// Phases: events [bounds[k-1], bounds[k]) are range k; delivered counts its pairs that
	// have had a 200.
	bounds      []int
	delivered   []atomic.Int64
	failed      []atomic.Int64 // per range: answered 500 on purpose (--fail-rate)
	sameAttempt []atomic.Int64 // per range: 200s to an attempt number already answered 200
	total       atomic.Int64   // pairs delivered, all ranges

	requests  atomic.Int64 // requests for pairs (extra webhooks apart)
	badSig    atomic.Int64
	cancelled atomic.Int64 // the sender gave up before the answer (timeout or shutdown)

	mu       sync.Mutex
	problems []string // the first few unexpected things, for the report
	nProblem int64
}

// pair is one delivery as the receivers saw it.
type pair struct {
	n        atomic.Uint32 // requests
	ok       atomic.Uint32 // 200 answers
	first    atomic.Uint32 // tick of the first 200; 0 = none
	attempts atomic.Uint32 // bit a-1 set: attempt a (X-Delivery-Attempt) was answered 200
}

// attemptBit is the bit of attempt a in pair.attempts (attempts from 32 on share the last bit).
func attemptBit(a int) uint32 { return 1 << (min(max(a, 1), 32) - 1) }

const tick = 10 * time.Microsecond

func newTracker(lay *layout, payload int, epoch time.Time, bounds []int) *tracker {
	events := bounds[len(bounds)-1]
	t := &tracker{
		lay:         lay,
		payload:     payload,
		epoch:       epoch,
		events:      events,
		bounds:      bounds,
		delivered:   make([]atomic.Int64, len(bounds)),
		failed:      make([]atomic.Int64, len(bounds)),
		sameAttempt: make([]atomic.Int64, len(bounds)),
	}
	var f [4]func()
	t.sent, f[0] = offHeap[atomic.Uint32](events)
	t.ids, f[1] = offHeap[uuid.UUID](events)
	t.seen, f[2] = offHeap[atomic.Uint64](events)
	t.pairs, f[3] = offHeap[pair](events * lay.fanout)
	t.free = f[:]
	return t
}

// release gives the tracker's arrays back; nothing may touch them afterwards.
func (t *tracker) release() {
	for _, f := range t.free {
		f()
	}
	t.free = nil
	t.sent, t.ids, t.seen, t.pairs = nil, nil, nil, nil
}

// bytes is how much memory the tracker's arrays take for the events sent so far (pages of
// events never sent are never touched and take none).
func (t *tracker) bytes() int64 {
	n := t.events
	for n > 0 && t.sent[n-1].Load() == 0 {
		n--
	}
	return int64(n) * (4 + 16 + 8 + int64(t.lay.fanout)*16)
}

// now is the time since the tracker's epoch in nanoseconds, never 0.
func (t *tracker) now() int64 { return max(1, int64(time.Since(t.epoch))) }

// toTick and fromTick convert between nanoseconds since epoch and ticks.
func toTick(ns int64) uint32  { return uint32(max(1, min(ns/int64(tick), 1<<32-1))) }
func fromTick(v uint32) int64 { return int64(v) * int64(tick) }

// idHash is a non-zero digest of an event id.
func idHash(id uuid.UUID) uint64 {
	a := binary.LittleEndian.Uint64(id[:8])
	b := binary.LittleEndian.Uint64(id[8:])
	return (a ^ bits.RotateLeft64(b, 29) ^ b*0x9e3779b97f4a7c15) | 1
}

func (t *tracker) rangeOf(i int) int {
	for k, b := range t.bounds {
		if i < b {
			return k
		}
	}
	return len(t.bounds) - 1
}

func (t *tracker) rangeStart(k int) int {
	if k == 0 {
		return 0
	}
	return t.bounds[k-1]
}

// problem records something that must not happen; the run fails.
func (t *tracker) problem(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nProblem++
	if len(t.problems) < 10 {
		t.problems = append(t.problems, fmt.Sprintf(format, args...))
	}
}

func (t *tracker) problemCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nProblem
}

// noteID keeps the X-Event-Id of event i's first arrival and checks the later ones against it.
func (t *tracker) noteID(i int, id uuid.UUID) {
	h := idHash(id)
	if !t.seen[i].CompareAndSwap(0, h) {
		if was := t.seen[i].Load(); was != h {
			t.problem("event %d arrived with two different X-Event-Id values (the latest %s)", i, id)
		}
	}
}

// setID keeps the id the publish answer gave event i.
func (t *tracker) setID(i int, id uuid.UUID) { t.ids[i] = id }

// published is how many events, from the first, the publish answers gave an id to.
func (t *tracker) published() int {
	n := 0
	for n < t.events && t.ids[n] != uuid.Nil {
		n++
	}
	return n
}

// delivered200 records a 200 for attempt a of event i's pair p.
func (t *tracker) delivered200(i int, p *pair, a int) {
	now := toTick(t.now())
	if bit := attemptBit(a); p.attempts.Or(bit)&bit != 0 {
		t.sameAttempt[t.rangeOf(i)].Add(1)
	}
	if p.ok.Add(1) == 1 {
		p.first.Store(now)
		t.delivered[t.rangeOf(i)].Add(1)
		t.total.Add(1)
	}
}

// stats are the figures of the pairs of events [lo, hi).
type stats struct {
	pairs      int64
	delivered  int64
	requests   int64
	duplicates int64 // 200s beyond the first
	// unexplained: 200s to an attempt number that already had one — the same attempt sent
	// twice. A 200 to a later attempt is a retry: the sender counted the earlier attempt as
	// failed (its timeout or a broken connection), which at-least-once allows.
	unexplained int64
	missing     int64
	failed      int64    // 500s answered on purpose
	firstSent   int64    // ns since epoch; earliest publish of the range
	lastFirst   int64    // latest first 200
	latencies   []uint32 // ticks
	examples    []string // of missing or duplicated pairs
}

// collect gathers the figures of events [lo, hi); with latencies, also every pair's latency.
func (t *tracker) collect(lo, hi int, latencies bool) stats {
	f := t.lay.fanout
	s := stats{pairs: int64(hi-lo) * int64(f), firstSent: -1}
	for k := range t.bounds {
		if lo <= t.rangeStart(k) && t.bounds[k] <= hi {
			s.failed += t.failed[k].Load()
			s.unexplained += t.sameAttempt[k].Load()
		}
	}
	if latencies {
		s.latencies = make([]uint32, 0, s.pairs)
	}
	for i := lo; i < hi; i++ {
		sent := fromTick(t.sent[i].Load())
		if sent > 0 && (s.firstSent < 0 || sent < s.firstSent) {
			s.firstSent = sent
		}
		for k := range f {
			p := &t.pairs[i*f+k]
			s.requests += int64(p.n.Load())
			n := int64(p.ok.Load())
			switch {
			case n == 0:
				s.missing++
				if len(s.examples) < 5 {
					s.examples = append(s.examples, fmt.Sprintf("event %d (id %s) to webhook slot %d: missing after %d requests", i, t.idString(i), k, p.n.Load()))
				}
				continue
			case n > 1:
				s.duplicates += n - 1
				if same := bits.OnesCount32(p.attempts.Load()); int64(same) < n && len(s.examples) < 5 {
					s.examples = append(s.examples, fmt.Sprintf("event %d (id %s) to webhook slot %d: answered 200 %d times, twice to the same attempt number", i, t.idString(i), k, n))
				}
			}
			s.delivered++
			first := fromTick(p.first.Load())
			s.lastFirst = max(s.lastFirst, first)
			if latencies && sent > 0 {
				s.latencies = append(s.latencies, uint32(max(0, first-sent)/int64(tick)))
			}
		}
	}
	if s.firstSent < 0 {
		s.firstSent = 0
	}
	return s
}

// firsts returns the sorted times of the first 200 of every delivered pair of events [lo, hi).
func (t *tracker) firsts(lo, hi int) []int64 {
	f := t.lay.fanout
	out := make([]int64, 0, (hi-lo)*f)
	for k := lo * f; k < hi*f; k++ {
		if first := t.pairs[k].first.Load(); first > 0 {
			out = append(out, fromTick(first))
		}
	}
	slices.Sort(out)
	return out
}

func (t *tracker) idString(i int) string {
	if t.ids[i] != uuid.Nil {
		return t.ids[i].String()
	}
	return "unknown"
}

// checkIDs compares, for events [lo, hi), the id the publish answer gave with the X-Event-Id
// that arrived.
func (t *tracker) checkIDs(lo, hi int) {
	for i := lo; i < hi; i++ {
		if seen := t.seen[i].Load(); t.ids[i] != uuid.Nil && seen != 0 && seen != idHash(t.ids[i]) {
			t.problem("event %d: published as %s but delivered with another X-Event-Id", i, t.ids[i])
		}
	}
}

// Latency is a distribution of times, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// percentiles of d (sorted in place), each d[k] × unit.
func percentiles[T time.Duration | uint32](d []T, unit time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		k := int(q*float64(len(d))+0.5) - 1
		k = min(max(k, 0), len(d)-1)
		return ms(time.Duration(d[k]) * unit)
	}
	return Latency{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(time.Duration(d[len(d)-1]) * unit)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
