package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/schemas"
)

// TestDefaultConcurrencyDocumented: the schema (and so docs/spec.md), the
// --concurrency help of run and resume, and the README state the engine's
// one default.
func TestDefaultConcurrencyDocumented(t *testing.T) {
	var root struct {
		Properties map[string]struct {
			Description string `json:"description"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schemas.Pipeline(), &root); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("the default, %d.", engine.DefaultConcurrency)
	if d := root.Properties["concurrency"].Description; !strings.Contains(d, want) {
		t.Errorf("schema's concurrency says %q, want it to say %q", d, want)
	}
	for _, cmd := range []string{"run", "resume"} {
		var out bytes.Buffer
		runMain([]string{cmd, "--help"}, nil, &out, &out, func(string) string { return "" })
		if w := fmt.Sprintf("else %d)", engine.DefaultConcurrency); !strings.Contains(out.String(), w) {
			t.Errorf("gpipe %s --help does not give the default concurrency %q:\n%s", cmd, w, out.String())
		}
	}
	readme := readRepoFile(t, "README.md")
	if w := fmt.Sprintf("`concurrency` (default %d;", engine.DefaultConcurrency); !strings.Contains(readme, w) {
		t.Errorf("README does not say %q", w)
	}
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
