package console

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/report/gha"
	"github.com/gpipe/gpipe/pipeline/spec"
)

func TestGitHub(t *testing.T) {
	var buf bytes.Buffer
	pos := map[string]spec.Pos{
		"lint":      {File: "/repo/specs/unet-brain.yaml", Line: 41, Col: 5},
		"fetch-msd": {File: "/repo/specs/unet-brain.yaml", Line: 20, Col: 5},
	}
	g := NewGitHub(&buf, GitHubOptions{
		StepPos: func(id string) (spec.Pos, bool) { p, ok := pos[id]; return p, ok },
		Paths:   gha.Paths{Workspace: "/repo", Dir: "/repo"},
		Secrets: []string{"hunter2"},
	})
	for _, ev := range script() {
		g.Event(ev)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	golden(t, "github.txt", buf.Bytes())
	if !strings.HasPrefix(out, "::add-mask::hunter2\n") {
		t.Error("secret mask is not the first line")
	}
	checkGroups(t, out)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "set-output") && strings.HasPrefix(l, "::") {
			t.Errorf("step output became a workflow command: %q", l)
		}
	}
}

// checkGroups fails when groups nest, interleave or stay open, which GitHub
// renders wrongly.
func checkGroups(t *testing.T, out string) {
	t.Helper()
	open := ""
	for i, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "::group::"):
			if open != "" {
				t.Errorf("line %d: group %q opens inside %q", i+1, l, open)
			}
			open = l
		case l == "::endgroup::":
			if open == "" {
				t.Errorf("line %d: endgroup without a group", i+1)
			}
			open = ""
		case strings.HasPrefix(l, "::error") && open != "":
			t.Errorf("line %d: annotation inside group %q", i+1, open)
		}
	}
	if open != "" {
		t.Errorf("group %q never closed", open)
	}
}

// An interrupted run: Close writes what running steps buffered.
func TestGitHubCloseUnfinished(t *testing.T) {
	var buf bytes.Buffer
	g := NewGitHub(&buf, GitHubOptions{})
	for _, ev := range script()[1:9] { // provision done; fetch-msd owns, lint buffers
		g.Event(ev)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	checkGroups(t, out)
	if !strings.Contains(out, "::group::lint (unfinished)\n09:05:00 started\n09:05:02 ::set-output name=evil::1\n::endgroup::\n") {
		t.Errorf("unfinished step's buffered lines missing:\n%s", out)
	}
	_ = engine.StepOutput
}
