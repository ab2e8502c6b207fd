package testtool

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Seed returns the seed of a randomized test: the value of the environment
// variable env when set, else one from the clock. It logs the seed with the
// command line that replays it, so a failure seen once (in CI) can be rerun.
func Seed(t testing.TB, env string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(env); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an unsigned integer: %v", env, s, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d go test -run '^%s$')", seed, env, seed, t.Name())
	return seed
}
