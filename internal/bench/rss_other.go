//go:build !linux

package bench

// resetPeakRSS cannot reset the peak on this system: see the Linux version.
func resetPeakRSS() bool { return false }

// peakRSS is the process's peak RSS so far (ru_maxrss).
func peakRSS() int64 {
	_, rss := usage()
	return rss
}
