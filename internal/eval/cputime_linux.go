package eval

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling OS thread has used. The models run with one intra-op
// thread on the caller's thread, so the difference around a call (with the goroutine locked to
// its thread) is that call's CPU cost, unaffected by other processes competing for the cores.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
