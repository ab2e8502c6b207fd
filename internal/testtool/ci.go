package testtool

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in continuous integration: CI set to
// anything at all (GitHub Actions and most others set CI=true; some CI=1).
// This is the one place that decides.
func InCI() bool { return os.Getenv("CI") != "" }

// Unavailable stops a test that cannot run here for reason: outside CI it is
// skipped, in CI it fails, so that CI never passes by skipping. reason says
// what is missing and how to provide it.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI is set, so this test may not be skipped)", reason)
	}
	t.Skip(reason)
}
