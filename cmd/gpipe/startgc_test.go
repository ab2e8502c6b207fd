package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// gcPercent reads GOGC's current value (SetGCPercent returns the old one).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// memoryLimit reads the soft memory limit (a negative value only reads it).
func memoryLimit() int64 { return debug.SetMemoryLimit(-1) }

func TestStartupGCLeavesAUsersGOGCAlone(t *testing.T) {
	orig, origLimit := gcPercent(), memoryLimit()
	t.Cleanup(func() { debug.SetGCPercent(orig); debug.SetMemoryLimit(origLimit) })

	debug.SetGCPercent(55) // as GOGC=55 in the environment would
	user := func(k string) string {
		if k == "GOGC" {
			return "55"
		}
		return ""
	}
	raiseStartupGC(user)
	if got := gcPercent(); got != 55 {
		t.Fatalf("startup with GOGC=55: GC percent %d, want 55", got)
	}
	endStartupGC(user)
	if got := gcPercent(); got != 55 {
		t.Fatalf("engine with GOGC=55: GC percent %d, want 55", got)
	}

	debug.SetGCPercent(100)
	none := func(string) string { return "" }
	raiseStartupGC(none)
	if got := gcPercent(); got != startupGCPercent {
		t.Fatalf("startup without GOGC: GC percent %d, want %d", got, startupGCPercent)
	}
	if got := memoryLimit(); got != startupMemoryLimit {
		t.Fatalf("startup without GOMEMLIMIT: memory limit %d, want %d", got, startupMemoryLimit)
	}
	endStartupGC(none)
	if got := gcPercent(); got != 100 {
		t.Fatalf("engine without GOGC: GC percent %d, want Go's default 100", got)
	}
	if got := memoryLimit(); got != math.MaxInt64 {
		t.Fatalf("engine without GOMEMLIMIT: memory limit %d, want none", got)
	}

	// A user's GOMEMLIMIT stays, even while GOGC is raised.
	debug.SetMemoryLimit(1 << 30)
	limit := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}
	raiseStartupGC(limit)
	endStartupGC(limit)
	if got := memoryLimit(); got != 1<<30 {
		t.Fatalf("with GOMEMLIMIT=1GiB: memory limit %d after startup, want 1 GiB", got)
	}
}
