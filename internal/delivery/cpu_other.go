//go:build !unix

package delivery

import "time"

// processCPU cannot be read here: the engine never counts its CPU as saturated.
func processCPU() (time.Duration, bool) { return 0, false }
