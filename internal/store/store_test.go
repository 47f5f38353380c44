package store

import (
	"testing"
	"time"
)

func TestCommitBucket(t *testing.T) {
	last := len(CommitBounds)
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{time.Millisecond, 0},
		{time.Millisecond + 1, 1},
		{7 * time.Millisecond, 3},
		{time.Second, last - 1},
		{time.Second + 1, last},
		{time.Hour, last},
	} {
		if got := CommitBucket(c.d); got != c.want {
			t.Errorf("CommitBucket(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}
