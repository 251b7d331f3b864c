package analyzers

import (
	"syscall"
	"time"
)

// ThreadCPU is the CPU time the calling OS thread has used: the models run with one intra-op
// thread on the caller's thread, so the difference around an analyzer (the goroutine locked to
// its thread) is its CPU cost, which other processes competing for the cores do not inflate.
func ThreadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
