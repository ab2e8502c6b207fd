package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, it
// must return either a spec or Errors whose every entry has a position, and
// for a spec it accepts, the guard's byte-level token count must not pass the
// scanner's (goccy accepts odd YAML, such as "a:\n0\n  - : {", where the
// count may, but then the schema refuses the spec anyway).
// Seeds: every spec under testdata plus the corpus in testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	l := testLoader()
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := l.Parse("fuzz.yaml", src)
		if err == nil {
			checkMinTokens(t, "fuzz.yaml", src)
			if s == nil {
				t.Fatal("nil spec without error")
			}
			for i := range s.Steps {
				if _, err := Expand(&s.Steps[i]); err != nil {
					t.Fatalf("loaded spec whose step does not expand: %v", err)
				}
				_ = StepDigest(&s.Steps[i])
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not Errors: %v", err)
		}
		for _, e := range errs {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
				t.Fatalf("error without position or message: %+v", e)
			}
		}
	})
}
