package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// IdempotencyWindow is how long an idempotency key binds.
const IdempotencyWindow = 24 * time.Hour

// pruneStep bounds the deliveries deleted in one store call, so pruning a large history never
// holds the store's writer for long.
const pruneStep = 5000

// Prune deletes delivery history older than retention every interval (and once shortly after
// start) until ctx ends, so the store does not grow without bound.
func Prune(ctx context.Context, st store.Store, retention, interval time.Duration, log *slog.Logger) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := PruneOnce(ctx, st, retention, time.Now())
		if err != nil && ctx.Err() == nil {
			log.Error("prune delivery history", "err", err)
		} else if n > 0 {
			log.Info("pruned delivery history", "deliveries", n, "older_than", retention)
		}
		t.Reset(interval)
	}
}

// PruneOnce deletes, in steps, what Prune deletes and returns how many deliveries went.
func PruneOnce(ctx context.Context, st store.Store, retention time.Duration, now time.Time) (int, error) {
	total := 0
	for {
		n, err := st.Prune(ctx, store.PruneParams{Before: now.Add(-retention), IdempotencyBefore: now.Add(-IdempotencyWindow), Limit: pruneStep})
		total += n
		if err != nil || n < pruneStep {
			return total, err
		}
	}
}
