package delivery

import "time"

// span is the length of the throughput window: maxThroughputPerMinute counts requests in any
// 60-second window.
const span = time.Minute

// window enforces a webhook's throughput limit over any 60-second span, exactly.
//
// A receiver sees a request arrive somewhere between its start and the end of its response, so
// a request counts from the moment it starts (running) until 60 s after it ended (ends). A new
// request may start only when fewer than limit requests count; then any two requests that the
// limit separates arrive at least 60 s apart, whatever the network did to either of them.
type window struct {
	ends    []time.Duration // end times of finished requests within the last span, oldest first
	head    int             // ends[:head] have left the window
	running int
}

// prune drops the ends that are a whole span old.
func (w *window) prune(now time.Duration) {
	for w.head < len(w.ends) && now-w.ends[w.head] >= span {
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.ends) {
		n := copy(w.ends, w.ends[w.head:])
		w.ends = w.ends[:n]
		w.head = 0
	}
}

// allow reports whether a request may start at now under limit. If not, it returns when one
// may, or -1 when that depends on requests still running.
func (w *window) allow(now time.Duration, limit int) (bool, time.Duration) {
	w.prune(now)
	recent := len(w.ends) - w.head
	used := recent + w.running
	if used < limit {
		return true, 0
	}
	// used-limit+1 requests must leave the window: the oldest ends go first.
	k := used - limit
	if k >= recent {
		return false, -1
	}
	return false, w.ends[w.head+k] + span
}

// free is how many requests may start at now under limit.
func (w *window) free(now time.Duration, limit int) int {
	w.prune(now)
	return max(0, limit-(len(w.ends)-w.head+w.running))
}

func (w *window) start() { w.running++ }

// finish records that a request started with start ended at now.
func (w *window) finish(now time.Duration) {
	w.running--
	// Ends arrive in time order, since now only grows; keep it so even if a caller's clock
	// reading raced another's.
	if n := len(w.ends); n > w.head && w.ends[n-1] > now {
		now = w.ends[n-1]
	}
	w.ends = append(w.ends, now)
}

// idle reports whether the window holds nothing, so its webhook's state may be dropped.
func (w *window) idle(now time.Duration) bool {
	w.prune(now)
	return w.running == 0 && w.head == len(w.ends)
}
