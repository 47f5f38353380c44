package bench

import (
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
)

// resetPeakRSS starts a new measurement of the process's peak RSS: the Go heap's free memory is
// given back to the system (debug.FreeOSMemory), then the kernel's high-water mark is reset to
// the resident size now (writing 5 to /proc/self/clear_refs, Linux 4.0 and later). What earlier
// runs left resident outside the Go heap still counts.
// ru_maxrss cannot be reset: it is the peak of the whole process, so with several runs in one
// invocation (rounds, the scale and fairness scenarios) every run after the largest reported
// that run's peak. It reports false where the mark cannot be reset; peakRSS is then the
// process's peak so far.
func resetPeakRSS() bool {
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is the process's peak RSS in bytes since the last resetPeakRSS (VmHWM in
// /proc/self/status), or ru_maxrss where that cannot be read.
func peakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if kb, ok := statusKB(b, "VmHWM:"); ok {
			return kb * 1024
		}
	}
	_, rss := usage()
	return rss
}

// statusKB reads the field named key (with its colon) of /proc/self/status, in kB.
func statusKB(status []byte, key string) (int64, bool) {
	for line := range bytes.Lines(status) {
		v, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		v, ok = bytes.CutSuffix(v, []byte("kB"))
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		return n, err == nil
	}
	return 0, false
}
