//go:build race

package spec

// raceSlowdown scales time budgets: the race detector slows parsing about
// tenfold, and a budget is about gpipe's code, not the detector's.
const raceSlowdown = 10
