//go:build !linux

package analyzers

import "time"

// ThreadCPU is not available here: analyzer costs are reported as 0 CPU.
func ThreadCPU() time.Duration { return 0 }
