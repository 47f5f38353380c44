package bench

import (
	"runtime"
	"testing"
)

func TestStatusKB(t *testing.T) {
	status := []byte("Name:\thookrelay\nVmPeak:\t  912344 kB\nVmHWM:\t   98304 kB\nVmRSS:\t   65536 kB\n")
	for _, c := range []struct {
		key  string
		want int64
		ok   bool
	}{
		{"VmHWM:", 98304, true},
		{"VmRSS:", 65536, true},
		{"VmSwap:", 0, false},
		{"Name:", 0, false}, // not a size
	} {
		if got, ok := statusKB(status, c.key); got != c.want || ok != c.ok {
			t.Errorf("statusKB(%q) = %d, %v; want %d, %v", c.key, got, ok, c.want, c.ok)
		}
	}
}

// TestResetPeakRSS checks that a run's peak leaves out what an earlier run held: the reason the
// bench resets the mark at each run's start.
func TestResetPeakRSS(t *testing.T) {
	if !resetPeakRSS() {
		t.Skip("/proc/self/clear_refs cannot be written here: peak RSS is the process's")
	}
	const size = 256 << 20
	b := make([]byte, size)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1 // resident
	}
	held := peakRSS()
	runtime.KeepAlive(b) // and no longer: resetPeakRSS's garbage collection frees it
	if !resetPeakRSS() {
		t.Fatal("resetPeakRSS worked once, then not")
	}
	after := peakRSS()
	if held < size || after > held-size/2 {
		t.Fatalf("peak RSS %d MiB while holding %d MiB, %d MiB after it was freed and the mark reset; want the reset peak at least %d MiB lower",
			held>>20, size>>20, after>>20, size>>21)
	}
}
