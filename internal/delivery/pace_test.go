package delivery

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// steady feeds p n attempts of duration d, one every gap from *mono on.
func steady(p *pace, mono *time.Duration, n int, d, gap time.Duration) {
	for range n {
		*mono += gap
		p.observe(d, *mono)
	}
}

// fastThenStall: 2 s of 1 ms answers, so that the pace is 1 ms; then a 5 s stall.
func fastThenStall(p *pace) (mono time.Duration) {
	mono = 10 * time.Second
	steady(p, &mono, 2000, time.Millisecond, time.Millisecond)
	return mono + 5*time.Second
}

// stallStarts are the two ways a stall can find a webhook: with its pace known, or before any
// answer; each returns the time the stall ends.
var stallStarts = []struct {
	name   string
	before func(*pace) time.Duration
}{
	{"after a known pace", fastThenStall},
	{"first thing seen", func(*pace) time.Duration { return 10 * time.Second }},
}

// TestPaceIgnoresAStall: a webhook that answers in 1 ms hangs for 5 s, then answers its 64
// hung requests at once and goes on at 1 ms. The average jumps; the pace planned with does
// not, whether or not a pace was known before the stall.
func TestPaceIgnoresAStall(t *testing.T) {
	for _, tc := range stallStarts {
		t.Run(tc.name, func(t *testing.T) {
			var p pace
			mono := tc.before(&p)
			steady(&p, &mono, 64, 5*time.Second, time.Microsecond)
			peak, worst := p.avg, p.settled
			for range 20000 { // 2 s of 1 ms answers
				mono += 100 * time.Microsecond
				p.observe(time.Millisecond, mono)
				worst = max(worst, p.settled)
			}
			if peak < time.Second {
				t.Fatalf("the stall raised the average only to %v: the test does not exercise it", peak)
			}
			if worst > 2*time.Millisecond {
				t.Errorf("planned with a pace of %v after the stall, want the webhook's 1 ms", worst)
			}
			if p.settled == 0 || p.settled > 2*time.Millisecond {
				t.Errorf("pace %v after 2 s of fast answers, want about 1 ms", p.settled)
			}
		})
	}
}

// TestPaceFollowsASlowdown: a webhook that now takes 5 s per attempt, its 64 slots answering
// together every 5 s, is planned with that once it has held for paceSettles.
func TestPaceFollowsASlowdown(t *testing.T) {
	var p pace
	mono := fastThenStall(&p)
	steady(&p, &mono, 64, 5*time.Second, time.Microsecond)
	if p.settled > 2*time.Millisecond {
		t.Errorf("planned with %v right after the first slow answers, want the old 1 ms until the change holds", p.settled)
	}
	for range 2 {
		mono += 5 * time.Second
		steady(&p, &mono, 64, 5*time.Second, time.Microsecond)
	}
	if p.settled < 2500*time.Millisecond {
		t.Errorf("planned with %v after 10 s of 5 s answers, want about 5 s", p.settled)
	}
}

// TestPaceFollowsASpeedupAtOnce: a slow webhook that answers fast again is planned with its new
// pace as soon as the average shows it.
func TestPaceFollowsASpeedupAtOnce(t *testing.T) {
	var p pace
	mono := 10 * time.Second
	steady(&p, &mono, 3, 5*time.Second, 5*time.Second)
	if p.settled < 2500*time.Millisecond {
		t.Fatalf("pace %v after 10 s of 5 s answers, want about 5 s", p.settled)
	}
	steady(&p, &mono, 8, time.Millisecond, time.Millisecond)
	if p.settled > 2500*time.Millisecond {
		t.Errorf("planned with %v after 8 fast answers, want under half of 5 s", p.settled)
	}
}

// TestRoomAfterAStall: the room a webhook has in memory follows the settled pace, so a stall's
// answers do not send its backlog back to the store.
func TestRoomAfterAStall(t *testing.T) {
	e := &Engine{cfg: Config{WebhookConcurrency: 64, MaxHeld: 32768}, epoch: time.Now()}
	for _, tc := range stallStarts {
		h := &hook{w: store.Webhook{MaxThroughputPerMinute: 1_000_000}}
		mono := tc.before(&h.pace)
		before := e.roomLocked(h)
		steady(&h.pace, &mono, 64, 5*time.Second, time.Microsecond)
		if after := e.roomLocked(h); after != before || after <= e.cfg.WebhookConcurrency {
			t.Errorf("%s: room %d before the stall's answers, %d after; want it unchanged and above %d", tc.name, before, after, e.cfg.WebhookConcurrency)
		}
	}
}
