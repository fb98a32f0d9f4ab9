//go:build !unix

package yjs

// cpuTime is not measured here: x-yjs-cpu is then not reported.
func cpuTime() float64 { return 0 }
