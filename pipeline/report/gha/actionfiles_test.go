package gha

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/gpipe/gpipe/internal/testtool"
)

// repoRoot walks up from the package directory to the directory with go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// schemastore compiles a schema from the repository's copy of SchemaStore's
// (testdata/reference/schemastore; source, snapshot and licence in the README
// there).
func schemastore(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join(repoRoot(t), "testdata", "reference", "schemastore", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("schema %s: %v (a copy of SchemaStore/schemastore src/schemas/json/%s)", name, err, name)
	}
	var doc struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.ID == "" {
		t.Fatalf("%s: no $id (%v)", path, err)
	}
	c := jsonschema.NewCompiler()
	// The schemastore files declare draft-07 in $schema; the library knows that
	// metaschema, and nothing else may be fetched: the schemas have no remote
	// $refs, and tests must not reach the network.
	c.Draft = jsonschema.Draft7
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("refusing to load %s: no network in tests", u)
	}
	if err := c.AddResource(doc.ID, bytes.NewReader(data)); err != nil {
		t.Fatalf("add %s: %v", path, err)
	}
	s, err := c.Compile(doc.ID)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

// yamlDoc decodes a YAML file into the generic form the validator wants.
func yamlDoc(t *testing.T, src []byte) any {
	t.Helper()
	js, err := yaml.YAMLToJSON(src)
	if err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	// Numbers as json.Number, as the validator expects.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode JSON of YAML: %v", err)
	}
	return v
}

func workflowFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows in .github/workflows (%v)", err)
	}
	return files
}

func TestActionAndWorkflowsMatchSchemas(t *testing.T) {
	action := schemastore(t, "github-action.json")
	workflow := schemastore(t, "github-workflow.json")
	root := repoRoot(t)
	files := map[string]*jsonschema.Schema{filepath.Join(root, "action.yml"): action}
	for _, f := range workflowFiles(t) {
		files[f] = workflow
	}
	for path, schema := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(yamlDoc(t, src)); err != nil {
				t.Errorf("%s does not match its schema:\n%#v", path, err)
			}
		})
	}
	// The schemas must reject what GitHub rejects, or the test above proves
	// nothing.
	bad := []struct {
		schema *jsonschema.Schema
		src    string
	}{
		{action, "name: x\ndescription: y\n"},                                                       // no runs
		{action, "name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n    - run: echo\n"}, // run without shell
		{workflow, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout-minute: 3\n    steps: [{run: x}]\n"},
	}
	for _, b := range bad {
		if err := b.schema.Validate(yamlDoc(t, []byte(b.src))); err == nil {
			t.Errorf("schema accepted invalid file:\n%s", b.src)
		}
	}
}

// actionFile is the part of action.yml the script tests read.
type actionFile struct {
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Steps []struct {
			ID    string            `yaml:"id"`
			Name  string            `yaml:"name"`
			Run   string            `yaml:"run"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func loadAction(t *testing.T) actionFile {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a actionFile
	if err := yaml.Unmarshal(src, &a); err != nil {
		t.Fatalf("parse action.yml: %v", err)
	}
	return a
}

// gpipeScript returns the script of the action's "Run gpipe" step.
func gpipeScript(t *testing.T, a actionFile) string {
	t.Helper()
	for _, st := range a.Runs.Steps {
		if st.ID == "gpipe" {
			return st.Run
		}
	}
	t.Fatal("action.yml has no step with id gpipe")
	return ""
}

func TestActionScripts(t *testing.T) {
	a := loadAction(t)
	for name, o := range a.Outputs {
		if !strings.Contains(o.Value, "steps.gpipe.outputs."+name) {
			t.Errorf("output %s = %q, want it from steps.gpipe.outputs.%s", name, o.Value, name)
		}
	}
	scripts := map[string]string{}
	for _, st := range a.Runs.Steps {
		if st.Run != "" {
			scripts["action.yml: "+st.Name] = st.Run
		}
	}
	for _, f := range workflowFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					Name string `yaml:"name"`
					Run  string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(src, &wf); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for job, j := range wf.Jobs {
			for i, st := range j.Steps {
				if st.Run != "" {
					scripts[fmt.Sprintf("%s: job %s step %d", filepath.Base(f), job, i+1)] = st.Run
				}
			}
		}
	}
	shellcheck := testtool.Shellcheck(t)
	for name, script := range scripts {
		// Expressions spliced into a script are a shell injection; inputs go
		// through env instead.
		if strings.Contains(script, "${{") {
			t.Errorf("%s splices an expression into its script", name)
		}
		cmd := exec.Command(shellcheck, "--shell=bash", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck on %s: %v\n%s", name, err, out)
		}
	}
}

// TestActionCommands runs the action's script with a fake gpipe that prints
// its arguments, one per line, to check what each command runs.
func TestActionCommands(t *testing.T) {
	script := gpipeScript(t, loadAction(t))
	bash, err := exec.LookPath("bash")
	if err != nil {
		testtool.Unavailable(t, "bash not found on PATH: the action's script runs with bash")
	}
	bin := t.TempDir()
	fake := "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "gpipe"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, f := range []string{"specs/a.yaml", "specs/sub/b.yaml", "specs/c.txt"} {
		p := filepath.Join(work, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	params := "task=01\n\n  # a comment\n  fold=2  \nnote=a b; $(touch pwned)\nlast=no-newline"
	tests := []struct {
		name, command, spec, state, args, params string
		want                                     []string // gpipe's arguments; nil: must fail
	}{
		{"run-or-resume", "run-or-resume", "specs/a.yaml", "s3://b/p", "--concurrency 2", params,
			[]string{"run", "--resume-existing", "--state", "s3://b/p", "--run-id", "gh-42",
				"-p", "task=01", "-p", "fold=2", "-p", "note=a b; $(touch pwned)", "-p", "last=no-newline",
				"--concurrency", "2", "specs/a.yaml"}},
		{"run", "run", "specs/a.yaml", "", "", "", []string{"run", "--run-id", "gh-42", "specs/a.yaml"}},
		{"resume", "resume", "", "s3://b/p", "", "", []string{"resume", "--state", "s3://b/p", "gh-42"}},
		// A resume gets the params: a run saves no secret param.
		{"resume with params", "resume", "", "", "", "token=t0k\nfold=2", []string{"resume", "-p", "token=t0k", "-p", "fold=2", "gh-42"}},
		{"validate", "validate", "specs/**/*.yaml\nspecs/a.yaml", "", "", "",
			[]string{"validate", "specs/a.yaml", "specs/sub/b.yaml", "specs/a.yaml"}},
		{"plan", "plan", "specs/a.yaml", "", "", "task=01",
			[]string{"plan", "-p", "task=01", "specs/a.yaml"}},
		{"validate no match", "validate", "nope/*.yaml", "", "", "", nil},
		{"run without spec", "run", "", "", "", "", nil},
		{"bad param line", "run", "specs/a.yaml", "", "", "task", nil},
		{"unknown command", "deploy", "specs/a.yaml", "", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			summary := filepath.Join(t.TempDir(), "summary.md")
			cmd := exec.Command(bash, "-c", script)
			cmd.Dir = work
			cmd.Env = append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"GITHUB_STEP_SUMMARY="+summary,
				"GPIPE_COMMAND="+tt.command, "GPIPE_SPEC="+tt.spec, "GPIPE_RUN_ID=gh-42",
				"GPIPE_PARAMS="+tt.params, "GPIPE_STATE_URL="+tt.state, "GPIPE_ARGS="+tt.args)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tt.want == nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "::error") {
					t.Errorf("want exit 2 with an ::error:: line, got %v:\n%s%s", err, out, stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("script failed: %v\n%s%s", err, out, stderr.String())
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if tt.command == "plan" {
				// The plan is printed, then its Mermaid form goes to the summary.
				md, _ := os.ReadFile(summary)
				if !strings.Contains(string(md), "```mermaid\nplan\n--format\nmermaid\n-p\ntask=01\nspecs/a.yaml\n```") {
					t.Errorf("step summary:\n%s", md)
				}
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("gpipe ran with\n%q\nwant\n%q", got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(work, "pwned")); err == nil {
				t.Error("a param value ran as shell code")
			}
		})
	}
}

// TestActionDefaultRunID runs the action's script without a run-id input: the
// id it makes is unique per workflow run, job and matrix leg, and the same on
// another attempt of the same job ("Re-run failed jobs" must resume it).
func TestActionDefaultRunID(t *testing.T) {
	a := loadAction(t)
	script := gpipeScript(t, a)
	for _, st := range a.Runs.Steps {
		if st.ID != "gpipe" {
			continue
		}
		// The parts come from these expressions; run_attempt must not.
		for k, want := range map[string]string{"GPIPE_GH_RUN": "${{ github.run_id }}",
			"GPIPE_GH_JOB": "${{ github.job }}", "GPIPE_GH_MATRIX": "${{ toJSON(matrix) }}"} {
			if st.Env[k] != want {
				t.Errorf("env %s = %q, want %q", k, st.Env[k], want)
			}
		}
		for k, v := range st.Env {
			if strings.Contains(v, "run_attempt") {
				t.Errorf("env %s = %q depends on the attempt", k, v)
			}
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	bin := t.TempDir()
	fake := "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "gpipe"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "a.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	runID := func(run, job, matrix, attempt string) string {
		t.Helper()
		cmd := exec.Command(bash, "-c", script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(),
			"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"GPIPE_COMMAND=resume", "GPIPE_SPEC=a.yaml", "GPIPE_RUN_ID=",
			"GPIPE_PARAMS=", "GPIPE_STATE_URL=", "GPIPE_ARGS=", "GPIPE_DETACH=", "GPIPE_DETACH_SIGNAL=",
			"GPIPE_GH_RUN="+run, "GPIPE_GH_JOB="+job, "GPIPE_GH_MATRIX="+matrix, "GITHUB_RUN_ATTEMPT="+attempt)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("script failed: %v\n%s", err, out)
		}
		args := strings.Fields(string(out))
		return args[len(args)-1]
	}
	fold0 := "{\n  \"fold\": 0\n}"
	fold1 := "{\n  \"fold\": 1\n}"
	plain := runID("42", "train", "null", "1")
	if plain != "gh-42-train" {
		t.Errorf("run id without a matrix = %q, want gh-42-train", plain)
	}
	leg0 := runID("42", "train", fold0, "1")
	ids := map[string]string{
		"plain": plain, "leg 0": leg0, "leg 1": runID("42", "train", fold1, "1"),
		"other job": runID("42", "eval", fold0, "1"), "other workflow run": runID("43", "train", fold0, "1"),
	}
	seen := map[string]string{}
	for what, id := range ids {
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share run id %s", what, other, id)
		}
		seen[id] = what
		if !strings.HasPrefix(id, "gh-4") {
			t.Errorf("%s: run id %q", what, id)
		}
	}
	if again := runID("42", "train", fold0, "2"); again != leg0 {
		t.Errorf("a re-run (attempt 2) got run id %s, the first attempt %s", again, leg0)
	}
}

// TestActionDetach checks the detach inputs: the commands that drive a run
// get --detach-after (and --detach-on-signal when asked), the others not.
func TestActionDetach(t *testing.T) {
	script := gpipeScript(t, loadAction(t))
	bash, err := exec.LookPath("bash")
	if err != nil {
		testtool.Unavailable(t, "bash not found on PATH: the action's script runs with bash")
	}
	bin := t.TempDir()
	fake := "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "gpipe"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "a.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, command, after, signal string
		want                         []string // nil: must fail with exit 2
	}{
		{"run-or-resume detaches", "run-or-resume", "5h30m", "false",
			[]string{"run", "--resume-existing", "--run-id", "gh-7", "--detach-after", "5h30m", "a.yaml"}},
		{"run on signal", "run", "5h", "true",
			[]string{"run", "--run-id", "gh-7", "--detach-after", "5h", "--detach-on-signal", "a.yaml"}},
		{"resume", "resume", "1h", "", []string{"resume", "--detach-after", "1h", "gh-7"}},
		{"never", "run", "", "false", []string{"run", "--run-id", "gh-7", "a.yaml"}},
		{"validate ignores it", "validate", "5h30m", "true", []string{"validate", "a.yaml"}},
		{"bad detach-on-signal", "run", "5h", "yes", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bash, "-c", script)
			cmd.Dir = work
			cmd.Env = append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"GITHUB_STEP_SUMMARY="+filepath.Join(t.TempDir(), "summary.md"),
				"GPIPE_COMMAND="+tt.command, "GPIPE_SPEC=a.yaml", "GPIPE_RUN_ID=gh-7",
				"GPIPE_PARAMS=", "GPIPE_STATE_URL=", "GPIPE_ARGS=",
				"GPIPE_DETACH="+tt.after, "GPIPE_DETACH_SIGNAL="+tt.signal)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tt.want == nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "::error") {
					t.Errorf("want exit 2 with an ::error:: line, got %v:\n%s%s", err, out, stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("script failed: %v\n%s%s", err, out, stderr.String())
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("gpipe ran with\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
