//go:build !linux

package bench

// machineTimes is not read on this system (/proc/stat is Linux's).
func machineTimes() cpuTimes { return cpuTimes{} }
