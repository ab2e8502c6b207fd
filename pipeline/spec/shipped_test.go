package spec

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedSpecsHaveNoWarnings: the specs in specs/ and the spec examples
// in the README show the safe form (values through env:), so validate prints
// no warning for them.
func TestShippedSpecsHaveNoWarnings(t *testing.T) {
	files, _ := filepath.Glob("../../specs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no specs in ../../specs")
	}
	l := testLoader()
	for _, f := range files {
		s, err := l.Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(s.Warnings) > 0 {
			t.Errorf("%s:\n%v", f, s.Warnings)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if !strings.Contains(m[1], "\nsteps:") {
			continue // a workflow, not a spec
		}
		n++
		s, err := l.Parse("README.md spec example", []byte(m[1]))
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(s.Warnings) > 0 {
			t.Errorf("%v", s.Warnings)
		}
	}
	if n == 0 {
		t.Error("no spec example found in README.md")
	}
}
