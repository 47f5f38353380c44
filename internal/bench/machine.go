package bench

import (
	"bytes"
	"fmt"
	"strconv"
)

// cpuTimes is the machine's CPU time from /proc/stat, in clock ticks summed over every CPU:
// every process's, the kernel's included, not only this one's.
type cpuTimes struct {
	busy  int64 // user, nice, system, irq, softirq
	steal int64 // taken by the hypervisor for other machines
	total int64 // all of it, idle and iowait included
	cpus  int
}

// parseProcStat reads the aggregate "cpu" line of /proc/stat and counts the "cpuN" lines.
func parseProcStat(data []byte) (cpuTimes, error) {
	var t cpuTimes
	var found bool
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line)
		if len(f) == 0 || !bytes.HasPrefix(f[0], []byte("cpu")) {
			continue
		}
		if len(f[0]) > 3 {
			t.cpus++
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice: inside user and nice]
		if len(f) < 9 {
			return cpuTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]int64
		for i := range v {
			n, err := strconv.ParseInt(string(f[i+1]), 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		t.busy = v[0] + v[1] + v[2] + v[5] + v[6]
		t.steal = v[7]
		for _, n := range v {
			t.total += n
		}
		found = true
	}
	if !found || t.cpus == 0 {
		return cpuTimes{}, fmt.Errorf("/proc/stat: no cpu lines")
	}
	return t, nil
}

// since reports the machine's use from t0 to t; nil if either reading failed.
func (t cpuTimes) since(t0 cpuTimes) *MachineUse {
	dt := t.total - t0.total
	if t.cpus == 0 || t0.cpus == 0 || dt <= 0 {
		return nil
	}
	return &MachineUse{
		CoresBusy:  float64(t.busy-t0.busy) / float64(dt) * float64(t.cpus),
		StealShare: float64(t.steal-t0.steal) / float64(dt),
	}
}
