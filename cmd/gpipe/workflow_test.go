package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps"
)

// TestWorkflowParamsAreDeclared: every `name=` line a workflow passes to the
// gpipe action as params must be a param of the spec it runs by default, or
// the dispatched run would stop at once with "unknown param".
func TestWorkflowParamsAreDeclared(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows found: %v", err)
	}
	checked := 0
	for _, f := range files {
		var wf struct {
			On struct {
				WorkflowDispatch struct {
					Inputs map[string]struct {
						Default any `yaml:"default"`
					} `yaml:"inputs"`
				} `yaml:"workflow_dispatch"`
			} `yaml:"on"`
			Jobs map[string]struct {
				Steps []struct {
					Uses string            `yaml:"uses"`
					With map[string]string `yaml:"with"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(src, &wf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, job := range wf.Jobs {
			for _, st := range job.Steps {
				params := st.With["params"]
				if st.Uses != "./" || strings.TrimSpace(params) == "" {
					continue
				}
				specPath := st.With["spec"]
				if m := regexp.MustCompile(`^\$\{\{ inputs\.([\w-]+) \}\}$`).FindStringSubmatch(specPath); m != nil {
					specPath, _ = wf.On.WorkflowDispatch.Inputs[m[1]].Default.(string)
				}
				sp, err := spec.NewLoader(steps.SpecOptions()).Load(filepath.Join(root, specPath))
				if err != nil {
					t.Fatalf("%s: spec %q: %v", f, specPath, err)
				}
				declared := map[string]bool{}
				for _, p := range sp.Params {
					declared[p.Name] = true
				}
				for _, line := range strings.Split(params, "\n") {
					name, _, ok := strings.Cut(strings.TrimSpace(line), "=")
					if !ok || strings.HasPrefix(name, "#") {
						continue
					}
					checked++
					if !declared[name] {
						t.Errorf("%s passes param %q, which %s does not declare", filepath.Base(f), name, specPath)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no workflow passes params to the gpipe action; the test checks nothing")
	}
}
