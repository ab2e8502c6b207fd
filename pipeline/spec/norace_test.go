//go:build !race

package spec

// raceSlowdown scales time budgets; see race_test.go.
const raceSlowdown = 1
