package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/webhook"
)

// TestResult is what a test send got.
type TestResult struct {
	StatusCode int
	DurationMs int64
	Error      string
	Success    bool
}

// ThrottledError says a test send would break the webhook's throughput limit.
type ThrottledError struct{ RetryIn time.Duration }

func (e *ThrottledError) Error() string {
	return "maxThroughputPerMinute reached for this webhook; try again in " + e.RetryIn.Round(time.Second).String()
}

// ErrDeleted: the webhook was deleted.
var ErrDeleted = errors.New("webhook deleted")

// Test sends a sample event of w's type to w now, counted in its throughput window, and
// reports what came back. Nothing is stored.
func (e *Engine) Test(ctx context.Context, w store.Webhook) (TestResult, error) {
	e.mu.Lock()
	h := e.hookLocked(w.ID)
	if h.deleted {
		e.mu.Unlock()
		return TestResult{}, ErrDeleted
	}
	if w.Version > h.w.Version {
		h.w = w
	}
	ok, at := h.win.allow(e.mono(), w.MaxThroughputPerMinute)
	if !ok {
		e.mu.Unlock()
		retry := time.Minute
		if at > 0 {
			retry = max(at-e.mono(), time.Second)
		}
		return TestResult{}, &ThrottledError{RetryIn: retry}
	}
	h.win.start()
	e.mu.Unlock()
	var slot *grant
	if e.shared != nil {
		// The other nodes' requests count too: the slot comes from the store.
		id, retry, err := e.takeOneSlot(ctx, w)
		if err != nil || id == 0 {
			e.mu.Lock()
			h.win.running--
			e.mu.Unlock()
			if err != nil {
				return TestResult{}, err
			}
			return TestResult{}, &ThrottledError{RetryIn: max(retry, time.Second)}
		}
		slot = &grant{id: id, used: 1}
	}

	sendCtx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	res := send(sendCtx, e.client, e.cfg.Timeout, request{
		URL: w.URL, Signer: webhook.NewSigner(w.Secret), Body: event.Sample(w.Event), EventID: "test_" + uuid.NewString(),
		EventType: w.Event, WebhookID: w.ID, Attempt: 1,
	})
	cancel()

	e.mu.Lock()
	h.win.finish(e.mono())
	if slot != nil {
		slot.lastEnd = e.mono()
		h.grants = append(h.grants, slot)
		e.settleLocked(h, slot, slot.lastEnd)
	}
	e.considerLocked(h)
	e.pumpLocked()
	e.mu.Unlock()
	return TestResult{StatusCode: res.StatusCode, DurationMs: res.Duration.Milliseconds(), Error: res.Error, Success: res.StatusCode == 200}, nil
}
