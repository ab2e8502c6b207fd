package main

import (
	"math"
	"runtime/debug"
)

// startupGCPercent is the GOGC gpipe runs with until a run's steps start.
// Startup (the schema compile, the spec's parse and checks, the plan)
// allocates several MB that mostly die young; at Go's default of 100 the
// first collections come every few MB, two or three of them in a 1-step
// `gpipe validate`, about a fifth of its CPU. At 400 a small spec loads
// without a collection, and a 10,000-step spec's validate peaks at ~200 MB
// instead of ~145 MB for a quarter less CPU. startupMemoryLimit caps that:
// past it the collector runs as often as it must, so a big spec peaks near
// the limit (a 10,000-step run peaked at 231 MB with 400 alone, 144 MB at
// Go's default).
const (
	startupGCPercent   = 400
	startupMemoryLimit = 128 << 20
)

// defaultGCPercent is Go's GOGC when the environment sets none.
const defaultGCPercent = 100

// raiseStartupGC sets startupGCPercent unless the user chose a GOGC. Only
// main calls it: runMain also runs inside tests, whose process it must not
// retune.
func raiseStartupGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(startupGCPercent)
		if getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(startupMemoryLimit)
		}
	}
}

// endStartupGC gives the engine Go's default again, so a long run's heap is
// what it was before startup was tuned. A user's GOGC is left alone.
func endStartupGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		if getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(math.MaxInt64) // Go's default: no limit
		}
	}
}
