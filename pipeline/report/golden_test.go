package report

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testtool.Golden(t, filepath.Join("testdata", name), got, *update)
}
