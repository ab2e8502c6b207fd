package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/invalid")

// TestInvalidGolden loads every spec in testdata/invalid and compares the
// complete error text, positions and excerpts included, with its .golden file.
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d invalid specs, expected the whole set", len(files))
	}
	l := testLoader()
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			s, err := l.Load(f)
			if err == nil {
				t.Fatalf("loaded %s without error: %+v", f, s)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pipeline/spec -run TestInvalidGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
			for _, e := range errs {
				if e.Pos.File != f || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Excerpt == "" {
					t.Errorf("error without a full position or excerpt: %+v", e)
				}
			}
		})
	}
}
