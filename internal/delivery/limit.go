package delivery

import (
	"net/url"
	"time"
)

// concurrencyLimit is how many attempts one webhook may have in flight, between
// minConcurrency and the engine's WebhookConcurrency. Requests in flight beyond what keeps the
// CPU busy only wait for it, and each costs more of it: with receivers on the same 2 cores,
// plain net/http spent about 50 µs of CPU per request with 512 in flight against 33 µs with 64,
// and the pipeline delivered about 10% more with 4 per webhook and 40 in all than with 64 and
// 512 (BENCHMARKS.md, eleventh session).
//
// A limit starts at minConcurrency and moves at the end of a batch of limitBatch answers, once
// per look the engine takes at its process's CPU (watchCPU), so that each look sees what the
// last step did:
//   - the CPU not saturated: it doubles, for the CPU has room for more;
//   - saturated, and the batch's answers took on average no more than twice the quickest
//     answer: up by a quarter, for what the webhook waits for is not this CPU (a distant
//     receiver answers as slowly however busy this process is);
//   - saturated, and the answers took longer, or one of them was the delivery timeout: down by
//     an eighth, for they wait here, or the receiver does not answer at all.
//
// A timeout tells nothing of the receiver's pace, only that more requests in flight would wait
// as long: it makes its batch slow and leaves the quickest answer alone. (Counted as an answer
// of its own duration, a receiver that never answers had every batch as quick as its quickest,
// and its limit grew to the ceiling while the CPU was busy: 64 requests hanging, most of the
// engine's limit in all, which then left the other webhooks a few slots.)
//
// The quickest answer stands for the webhook's pace with nothing waiting until every batch has
// been slow for rebaseAfter (the destination got slower for good): then the quickest answer of
// that time replaces it.
type concurrencyLimit struct {
	n int // attempts allowed in flight

	sum      time.Duration // durations of the current batch's answers, timeouts left out
	count    int           // the batch's answers, timeouts included
	timeouts int           // the batch's timeouts

	quickest  time.Duration // quickest answer (0: none yet)
	slowSince time.Duration // mono; since when every batch has been slow (0: the last was not)
	slowBest  time.Duration // quickest answer since slowSince (0: none)
	tick      uint64        // the look at the CPU the last step followed
}

const (
	// minConcurrency is where a limit starts, and the fewest attempts in flight it goes down
	// to: enough that a webhook answering in 1 ms can still take 4,000 a second.
	minConcurrency = 4
	// limitBatch is how many answers make one judgement of the limit.
	limitBatch = 16
	// rebaseAfter is how long every batch must be slow before the quickest answer is forgotten.
	rebaseAfter = 30 * time.Second
)

func newConcurrencyLimit(ceiling int) concurrencyLimit {
	return concurrencyLimit{n: min(minConcurrency, ceiling)}
}

// answered takes the duration d of an attempt that got a response, ended at mono; ceiling is
// the engine's WebhookConcurrency, and cpu the engine's last look at its CPU.
func (c *concurrencyLimit) answered(d, mono time.Duration, ceiling int, cpu cpuState) {
	if c.quickest == 0 || d < c.quickest {
		c.quickest = d
	}
	if c.slowSince > 0 && (c.slowBest == 0 || d < c.slowBest) {
		c.slowBest = d
	}
	c.sum += d
	c.count++
	c.judge(mono, ceiling, cpu)
}

// timedOut takes an attempt that ended at mono with the delivery timeout, no response.
func (c *concurrencyLimit) timedOut(mono time.Duration, ceiling int, cpu cpuState) {
	c.count++
	c.timeouts++
	c.judge(mono, ceiling, cpu)
}

// judge moves the limit once the batch is full.
func (c *concurrencyLimit) judge(mono time.Duration, ceiling int, cpu cpuState) {
	if c.count < limitBatch {
		return
	}
	slow := c.timeouts > 0
	if answers := c.count - c.timeouts; answers > 0 {
		slow = slow || c.sum/time.Duration(answers) > 2*c.quickest
	}
	c.sum, c.count, c.timeouts = 0, 0, 0
	switch {
	case !slow:
		c.slowSince = 0
	case c.slowSince == 0:
		c.slowSince, c.slowBest = mono, 0
	case mono-c.slowSince >= rebaseAfter:
		if c.slowBest > 0 {
			c.quickest = c.slowBest
		}
		c.slowSince = 0
	}
	c.n = step(c.n, &c.tick, minConcurrency, ceiling, cpu, slow)
}

// step moves limit n after a batch of answers, slow or not, at most once per look at the CPU
// (last is the look of the last move), so that the next look sees what the move did: doubled
// while the CPU is free; while it is saturated, down by an eighth (to floor at least) when the
// answers were slow, else up by a quarter; never above ceiling.
func step(n int, last *uint64, floor, ceiling int, cpu cpuState, slow bool) int {
	if cpu.tick == *last {
		return n
	}
	*last = cpu.tick
	switch {
	case !cpu.saturated:
		return min(2*n, ceiling)
	case !slow:
		return min(n+max(1, n/4), ceiling)
	default:
		return max(min(floor, ceiling), n-max(1, n/8))
	}
}

// engineLimit is how many attempts may be in flight across all webhooks: between
// minEngineConcurrency and the engine's Concurrency, moved by the same rule as a webhook's
// concurrencyLimit but judging all answers together, each against the quickest answer of its
// destination (scheme, host and port). Many webhooks with a few deliveries each never fill a
// batch of their own, and their limits never bind: with 10,000 webhooks, 512 requests stayed
// in flight where 64 in all delivered 9 – 11% more.
type engineLimit struct {
	n     int
	sum   float64 // of the batch's answers, each over its destination's quickest
	count int
	tick  uint64 // the look at the CPU the last step followed
}

const (
	// minEngineConcurrency is where the engine's limit starts and the fewest it goes down to.
	minEngineConcurrency = 64
	// engineBatch is how many answers make one judgement of the engine's limit.
	engineBatch = 64
)

func newEngineLimit(ceiling int) engineLimit {
	return engineLimit{n: min(minEngineConcurrency, ceiling)}
}

// answered takes an answer's duration over its destination's quickest answer.
func (l *engineLimit) answered(ratio float64, ceiling int, cpu cpuState) {
	l.sum += ratio
	l.count++
	if l.count < engineBatch {
		return
	}
	slow := l.sum/float64(l.count) > 2
	l.sum, l.count = 0, 0
	l.n = step(l.n, &l.tick, minEngineConcurrency, ceiling, cpu, slow)
}

// quickest is the quickest answer of each destination, over the current and the last
// rebaseAfter, so that one that got slower for good is judged by its new pace within
// 2×rebaseAfter.
type quickest struct {
	cur, last map[string]time.Duration
	since     time.Duration // mono; when cur began
}

// answered records d, an answer of the destination key at mono, and returns the destination's
// quickest answer.
func (q *quickest) answered(key string, d, mono time.Duration) time.Duration {
	if q.cur == nil || mono-q.since >= rebaseAfter {
		q.last, q.cur, q.since = q.cur, map[string]time.Duration{}, mono
	}
	if c, ok := q.cur[key]; !ok || d < c {
		q.cur[key] = d
	}
	best := q.cur[key]
	if l, ok := q.last[key]; ok && l < best {
		best = l
	}
	return best
}

// destKey is where rawURL's requests go: its scheme, host and port.
func destKey(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Scheme + "://" + u.Host
}
