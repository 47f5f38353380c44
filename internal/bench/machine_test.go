package bench

import (
	"math"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	t0, err := parseProcStat([]byte("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\ncpu1 50 0 25 400 5 0 0 20 0 0\nintr 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if t0.busy != 150 || t0.steal != 40 || t0.total != 1000 || t0.cpus != 2 {
		t.Fatalf("parsed %+v; want busy 150, steal 40, total 1000, 2 CPUs", t0)
	}
	// 400 more ticks: 300 busy (guest time is inside user and not counted twice), 20 stolen.
	t1, err := parseProcStat([]byte("cpu  250 0 100 870 20 50 50 60 99 9\ncpu0 1\ncpu1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := t1.since(t0)
	if u == nil || math.Abs(u.CoresBusy-1.5) > 1e-9 || math.Abs(u.StealShare-0.05) > 1e-9 {
		t.Fatalf("since = %+v; want 1.5 cores busy, 5%% stolen", u)
	}
	if (cpuTimes{}).since(t0) != nil || t1.since(cpuTimes{}) != nil {
		t.Error("a failed reading gave figures")
	}
	for _, bad := range []string{"", "cpu 1 2 3\ncpu0 1\n", "cpu a b c d e f g h\ncpu0 1\n", "cpu  1 2 3 4 5 6 7 8\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", strings.TrimSpace(bad))
		}
	}
}
