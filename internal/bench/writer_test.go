package bench

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// TestWriterSince: a phase's writer figures are the differences between its two marks, and its
// commits are placed in their duration buckets.
func TestWriterSince(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	m0 := writerMark{at: t0, ok: true, s: store.WriterStats{Commits: 10, Writes: 10, Busy: time.Second, Committing: time.Second / 2,
		CommitsBy: [len(store.CommitBounds) + 1]int64{0: 8, 6: 2}}}
	m := m0
	m.at = t0.Add(4 * time.Second)
	m.s.Commits, m.s.Writes, m.s.Busy, m.s.Committing = 14, 22, 3*time.Second, time.Second
	// Four commits in the phase: two within 1 ms, one of 10 – 25 ms, one of 25 – 50 ms.
	m.s.CommitsBy[0] += 2
	m.s.CommitsBy[4]++
	m.s.CommitsBy[5]++
	w := m.since(m0)
	if w.Commits != 4 || w.WritesPerCommit != 3 || w.Busy != 0.5 || w.CommitShare != 0.25 {
		t.Errorf("figures = %+v; want 4 commits of 3 writes, busy 0.5, committing 0.25", w)
	}
	if w.CommitsOver10ms != 2 || w.SlowestCommitMs == nil || *w.SlowestCommitMs != (Bucket{Over: 25, UpTo: 50}) {
		t.Errorf("commits over 10 ms %d, slowest %+v; want 2, 25 – 50 ms (the 50 – 100 ms ones came before the phase)", w.CommitsOver10ms, w.SlowestCommitMs)
	}

	// A commit over the last bound has no upper one.
	m.s.CommitsBy[len(store.CommitBounds)]++
	if b := m.since(m0).SlowestCommitMs; b == nil || *b != (Bucket{Over: 1000}) {
		t.Errorf("slowest = %+v, want over 1,000 ms", b)
	}
	// No commit in the phase: nothing to name.
	if b := m0.since(m0).SlowestCommitMs; b != nil {
		t.Errorf("no commit, slowest = %+v", b)
	}
}
