package delivery

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestWindowAllowsLimitThenWaits(t *testing.T) {
	var w window
	now := 10 * time.Second
	for i := range 3 {
		ok, _ := w.allow(now, 3)
		if !ok {
			t.Fatalf("request %d refused under the limit", i+1)
		}
		w.start()
	}
	if ok, at := w.allow(now, 3); ok || at != -1 {
		t.Fatalf("fourth request while three run: ok=%v at=%v, want refused until one ends", ok, at)
	}
	w.finish(now + 100*time.Millisecond)
	w.finish(now + 200*time.Millisecond)
	if ok, at := w.allow(now+time.Second, 3); ok || at != now+100*time.Millisecond+span {
		t.Fatalf("after two ended: ok=%v at=%v, want refused until the first end leaves the window", ok, at)
	}
	if ok, _ := w.allow(now+100*time.Millisecond+span, 3); !ok {
		t.Fatal("refused after the oldest end left the window")
	}
	// A higher limit (after PATCH) applies at once.
	if ok, _ := w.allow(now+time.Second, 4); !ok {
		t.Fatal("refused under a raised limit")
	}
}

// TestWindowNeverExceedsLimit simulates requests with random latencies and checks, as a
// receiver would, that no 60-second span sees more than limit arrivals.
func TestWindowNeverExceedsLimit(t *testing.T) {
	const limit = 7
	rng := rand.New(rand.NewPCG(1, 2))
	var w window
	type req struct{ start, arrive, end time.Duration }
	var running []req
	var arrivals []time.Duration
	now := time.Duration(0)
	for now < 10*span {
		// End the requests whose time has come.
		kept := running[:0]
		for _, r := range running {
			if r.end <= now {
				w.finish(now)
			} else {
				kept = append(kept, r)
			}
		}
		running = kept
		if ok, _ := w.allow(now, limit); ok {
			w.start()
			lat := time.Duration(rng.IntN(int(20 * time.Second)))
			arrive := now + time.Duration(rng.Int64N(int64(lat)+1))
			running = append(running, req{start: now, arrive: arrive, end: now + lat})
			arrivals = append(arrivals, arrive)
		}
		now += time.Duration(rng.IntN(int(3 * time.Second)))
	}
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i] < arrivals[j] })
	if len(arrivals) < 3*limit {
		t.Fatalf("only %d requests in the simulation", len(arrivals))
	}
	for i := range arrivals {
		j := i
		for j < len(arrivals) && arrivals[j]-arrivals[i] < span {
			j++
		}
		if j-i > limit {
			t.Fatalf("%d arrivals within 60s starting at %v (limit %d)", j-i, arrivals[i], limit)
		}
	}
}

func TestWindowCompacts(t *testing.T) {
	var w window
	for i := range 10000 {
		now := time.Duration(i) * time.Millisecond * 100
		if ok, _ := w.allow(now, 1_000_000); !ok {
			t.Fatal("refused")
		}
		w.start()
		w.finish(now)
	}
	if len(w.ends) > 2*601+64 {
		t.Fatalf("window keeps %d ends for a 60s span at 10/s", len(w.ends))
	}
	if w.idle(1000*span) != true {
		t.Fatal("window not idle long after its last request")
	}
}
