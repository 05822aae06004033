//go:build unix

package httpprobe

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user+system) this process has used: the
// probe's client side and the loopback server's side together. Wall time
// per op on a shared 2-core machine says more about the neighbours.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
