package metrics

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hookrelay/hookrelay/internal/store"
)

func TestAttempted(t *testing.T) {
	m := New(nil)
	if all, none := m.Attempted(); all != 0 || none != 0 {
		t.Fatalf("a new Metrics reports %d attempts, %d without a response", all, none)
	}
	m.Attempts.WithLabelValues("200").Add(3)
	m.Attempts.WithLabelValues("500").Inc()
	m.Attempts.WithLabelValues("none").Add(2)
	if all, none := m.Attempted(); all != 6 || none != 2 {
		t.Fatalf("Attempted() = %d, %d; want 6, 2", all, none)
	}
	m.Outcomes.WithLabelValues("succeeded").Add(5)
	m.Outcomes.WithLabelValues("deferred").Add(4)
	if n := m.Deferred(); n != 4 {
		t.Fatalf("Deferred() = %d, want 4", n)
	}
}

// queueFake is a store that answers only the queue depth a scrape asks for.
type queueFake struct{ store.Store }

func (queueFake) QueueStats(context.Context, time.Time) (store.QueueStats, error) {
	return store.QueueStats{}, nil
}

// writerStoreFake stands for the embedded store: a store with a single writer.
type writerStoreFake struct {
	queueFake
	stats store.WriterStats
}

func (w *writerStoreFake) WriterStats() store.WriterStats { return w.stats }

func TestWriterMetrics(t *testing.T) {
	st := &writerStoreFake{stats: store.WriterStats{Commits: 7, Writes: 19, Busy: 1500 * time.Millisecond, Committing: 250 * time.Millisecond,
		// 3 within 1 ms, 2 within 2 ms, 1 within 25 ms, 1 over a second.
		CommitsBy: [len(store.CommitBounds) + 1]int64{0: 3, 1: 2, 4: 1, len(store.CommitBounds): 1}}}
	m := New(st)
	want := map[string]float64{
		"hookrelay_store_writer_busy_seconds_total":   1.5,
		"hookrelay_store_writer_commit_seconds_total": 0.25,
		"hookrelay_store_writer_commits_total":        7,
		"hookrelay_store_writer_writes_total":         19,
	}
	if got := writerCounters(t, m); !maps.Equal(got, want) {
		t.Errorf("writer metrics = %v, want %v", got, want)
	}
	h := writerCommitHistogram(t, m)
	if h.GetSampleCount() != 7 || h.GetSampleSum() != 0.25 {
		t.Errorf("commit duration histogram: %d commits, %v s; want 7, 0.25 s", h.GetSampleCount(), h.GetSampleSum())
	}
	wantBuckets := map[float64]uint64{.001: 3, .002: 5, .005: 5, .01: 5, .025: 6, .05: 6, .1: 6, .25: 6, .5: 6, 1: 6}
	gotBuckets := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		gotBuckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if !maps.Equal(gotBuckets, wantBuckets) {
		t.Errorf("commit duration buckets = %v, want %v", gotBuckets, wantBuckets)
	}
	if got, ok := m.Writer(); !ok || got != st.stats {
		t.Errorf("Writer() = %+v, %v; want %+v, true", got, ok, st.stats)
	}

	// A store without a single writer (PostgreSQL) has none of them.
	m = New(queueFake{})
	if got := writerCounters(t, m); len(got) != 0 {
		t.Errorf("without a single writer: %v, want none", got)
	}
	if _, ok := m.Writer(); ok {
		t.Error("Writer() reports figures for a store without a single writer")
	}
}

// writerCounters gathers m's hookrelay_store_writer_* counters.
func writerCounters(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "hookrelay_store_writer_") && f.GetType() == dto.MetricType_COUNTER {
			got[f.GetName()] = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return got
}

// writerCommitHistogram gathers m's commit duration histogram.
func writerCommitHistogram(t *testing.T, m *Metrics) *dto.Histogram {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "hookrelay_store_writer_commit_duration_seconds" {
			return f.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatal("no hookrelay_store_writer_commit_duration_seconds")
	return nil
}
