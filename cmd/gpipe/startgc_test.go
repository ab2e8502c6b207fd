package main

import (
	"runtime/debug"
	"testing"
)

// gcPercent reads GOGC's current value (SetGCPercent returns the old one).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestStartupGCLeavesAUsersGOGCAlone(t *testing.T) {
	orig := gcPercent()
	t.Cleanup(func() { debug.SetGCPercent(orig) })

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
	endStartupGC(none)
	if got := gcPercent(); got != 100 {
		t.Fatalf("engine without GOGC: GC percent %d, want Go's default 100", got)
	}
}
