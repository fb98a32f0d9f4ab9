//go:build unix

package yjs

import "syscall"

// cpuTime returns the CPU time (user + system, every thread: the GC's
// workers too) the process has used, in nanoseconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano() + ru.Stime.Nano())
}
