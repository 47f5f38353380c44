package delivery

import (
	"context"
	"runtime"
	"time"
)

const (
	// cpuInterval is how often the engine looks at its process's CPU use.
	cpuInterval = 100 * time.Millisecond
	// saturatedShare is the share of GOMAXPROCS's CPU time above which the process counts as
	// saturated.
	saturatedShare = 0.85
)

// cpuState is what the engine last saw of its process's CPU use.
type cpuState struct {
	tick      uint64 // counts the looks
	saturated bool   // the process used at least saturatedShare of what GOMAXPROCS allows
}

// watchCPU looks every cpuInterval, until ctx ends, at whether this process used at least
// saturatedShare of the CPU time GOMAXPROCS allows it over the interval. Where its CPU time
// cannot be read, every look finds it free, and the limits grow to their ceilings.
func (e *Engine) watchCPU(ctx context.Context) {
	prevCPU, readable := e.cpu()
	prevAt := time.Now()
	wasBusy := true // as cpuState starts
	t := time.NewTicker(cpuInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cpu, _ := e.cpu()
		now := time.Now()
		allowed := float64(now.Sub(prevAt)) * float64(runtime.GOMAXPROCS(0))
		busy := readable && allowed > 0 && float64(cpu-prevCPU) >= saturatedShare*allowed
		prevCPU, prevAt = cpu, now
		e.mu.Lock()
		// A change counts once two looks in a row agree, so that a blip (a pause of the
		// publishers, a burst of garbage collection) does not move every webhook's limit.
		saturated := e.cpuState.saturated
		if busy == wasBusy {
			saturated = busy
		}
		e.cpuState = cpuState{tick: e.cpuState.tick + 1, saturated: saturated}
		e.m.InFlightLimit.Set(float64(e.limit.n))
		e.m.CPUBusy.Set(b2f(saturated))
		e.mu.Unlock()
		wasBusy = busy
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
