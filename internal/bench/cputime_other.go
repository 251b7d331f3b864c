//go:build !linux

package bench

import "time"

// processCPU is not available here (reported as 0).
func processCPU() time.Duration { return 0 }
