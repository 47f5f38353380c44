package metrics

import "testing"

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
}
