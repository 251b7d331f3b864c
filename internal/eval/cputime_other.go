//go:build !linux

package eval

import "time"

// threadCPU is not measured outside Linux: the CPU column reads 0.
func threadCPU() time.Duration { return 0 }
