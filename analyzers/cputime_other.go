//go:build !linux

package analyzers

import "time"

// threadCPU is not available here: analyzer costs are reported as 0 CPU.
func threadCPU() time.Duration { return 0 }
