package bench

import "os"

// machineTimes reads the machine's CPU time (zero when it cannot).
func machineTimes() cpuTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	t, err := parseProcStat(data)
	if err != nil {
		return cpuTimes{}
	}
	return t
}
