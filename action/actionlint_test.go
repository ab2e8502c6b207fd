package action_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

const actionlintInstall = "go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

// TestActionlintWorkflows runs actionlint (types of expressions, known
// inputs of actions, shellcheck of run: scripts) on every workflow.
func TestActionlintWorkflows(t *testing.T) {
	lint := testtool.Find(t, "actionlint", actionlintInstall)
	files, err := filepath.Glob(filepath.Join("..", ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows found (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := os.ReadFile(f); err != nil { // also keys go test's cache on the file
				t.Fatal(err)
			}
			cmd := exec.Command(lint, "-no-color", filepath.Join(".github", "workflows", filepath.Base(f)))
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("actionlint %s: %v\n%s", f, err, out)
			}
		})
	}
}

var (
	yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	ownAction = regexp.MustCompile(`uses: gpipe/gpipe@\S+`)
)

// TestActionlintReadmeExamples lints the README's workflow snippets (lists of
// steps) inside a minimal workflow, so an example a user copies is valid:
// `uses: ./` is checked against this repository's action.yml inputs.
func TestActionlintReadmeExamples(t *testing.T) {
	lint := testtool.Find(t, "actionlint", actionlintInstall)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, m := range yamlBlock.FindAllSubmatch(readme, -1) {
		block := string(m[1])
		if !strings.HasPrefix(block, "- ") || !strings.Contains(block, "uses:") {
			continue // a spec or a fragment that is not a list of steps
		}
		n++
		var wf bytes.Buffer
		wf.WriteString("name: readme-example\non: workflow_dispatch\npermissions: {id-token: write, contents: read}\n" +
			"jobs:\n  example:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
		// The example names the action by its release; lint it as the local
		// action so its inputs and outputs are checked against action.yml.
		block = ownAction.ReplaceAllString(block, "uses: ./")
		for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
			wf.WriteString("      " + line + "\n")
		}
		// actionlint resolves `uses: ./` only inside a project (a folder
		// with .git): lint the example in a copy holding just action.yml.
		project := t.TempDir()
		for _, dir := range []string{".git", filepath.Join(".github", "workflows")} {
			if err := os.MkdirAll(filepath.Join(project, dir), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		action, err := os.ReadFile(filepath.Join("..", "action.yml"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(project, "action.yml"), string(action))
		example := filepath.Join(".github", "workflows", "readme-example.yml")
		writeFile(t, filepath.Join(project, example), wf.String())
		cmd := exec.Command(lint, "-no-color", example)
		cmd.Dir = project
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("actionlint on README example %d: %v\n%s\nworkflow:\n%s", n, err, out, wf.String())
		}
	}
	if n == 0 {
		t.Fatal("README.md has no workflow example (a ```yaml block listing steps with uses:)")
	}
}
