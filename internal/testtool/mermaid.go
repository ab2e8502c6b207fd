package testtool

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// MermaidInstall installs the node project that parses Mermaid for tests.
const MermaidInstall = "npm ci --prefix pipeline/report/testdata/mermaid-check"

// MermaidResult is what mermaid's own parser says about one document.
type MermaidResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// MermaidChecker returns a function that parses Mermaid documents with
// mermaid's own parser (check.mjs in dir, the node project
// pipeline/report/testdata/mermaid-check), since an invalid graph shows as an
// error on github.com. Without node or the project's node_modules the test
// is Unavailable.
func MermaidChecker(t testing.TB, dir string) func(docs []string) []MermaidResult {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		Unavailable(t, what+"; install with: "+MermaidInstall+" (needs node >= 18)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found on PATH")
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "mermaid", "package.json")); err != nil {
		missing("mermaid is not installed in " + dir)
	}
	return func(docs []string) []MermaidResult {
		t.Helper()
		cmd := exec.Command(node, "check.mjs")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(strings.Join(docs, "\x00"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var res []MermaidResult
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var r MermaidResult
			if derr := dec.Decode(&r); derr != nil {
				t.Fatalf("read mermaid checker output: %v\n%s%s", derr, out, stderr.String())
			}
			res = append(res, r)
		}
		if len(res) != len(docs) {
			t.Fatalf("mermaid checker answered %d of %d documents (%v):\n%s%s", len(res), len(docs), err, out, stderr.String())
		}
		return res
	}
}
