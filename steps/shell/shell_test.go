package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/schemas"
	"github.com/gpipe/gpipe/steps/host"
)

type localOnly struct{}

func (localOnly) For(h pipeline.Host) (host.Executor, error) {
	if h.Address != "local" {
		return nil, errors.New("not local")
	}
	return &host.Local{}, nil
}

func TestShellStep(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		with    map[string]any
		wantOut map[string]string
		wantLog string
		wantErr string
	}{
		{"outputs", map[string]any{"run": `echo "n=$((1+2))" >> "$GPIPE_OUTPUT"; echo hi`}, map[string]string{"n": "3"}, "hi\n", ""},
		{"pipefail", map[string]any{"run": "false | true\necho unreachable"}, nil, "", "exit status 1"},
		{"errexit", map[string]any{"run": "false\necho unreachable"}, nil, "", "exit status 1"},
		// No nounset, as in GitHub Actions' shell: bash.
		{"unset variable is empty", map[string]any{"run": `echo "v=[${GPIPE_SURELY_UNSET_VAR}]"`}, nil, "v=[]\n", ""},
		{"working directory", map[string]any{"run": `echo "wd=$PWD" >> "$GPIPE_OUTPUT"`, "working_directory": dir}, map[string]string{"wd": dir}, "", ""},
		{"empty", map[string]any{"run": "  "}, nil, "", "shell: with.run: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			s := &Step{Executors: localOnly{}}
			res, err := s.Run(context.Background(), &pipeline.StepRun{StepID: "a", With: c.with, Log: &log, Host: pipeline.Host{Name: "local", Address: "local"}})
			if c.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.wantErr)) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.wantOut {
				if res.Outputs[k] != v {
					t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
				}
			}
			if log.String() != c.wantLog {
				t.Errorf("log = %q, want %q", log.String(), c.wantLog)
			}
		})
	}
}

// TestStrictnessDocumented: the schema (and so docs/spec.md) describes
// with.run with the very line the scripts start with.
func TestStrictnessDocumented(t *testing.T) {
	var root struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Description string `json:"description"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.Pipeline(), &root); err != nil {
		t.Fatal(err)
	}
	desc := root.Defs["with-shell"].Properties["run"].Description
	if !strings.Contains(desc, "`"+Strictness+"`") {
		t.Errorf("schema's with.run says %q, want it to name `%s`", desc, Strictness)
	}
	s := &Step{}
	body, err := s.Script(&pipeline.StepRun{StepID: "a", With: map[string]any{"run": "true"}})
	if err != nil || !strings.HasPrefix(body, Strictness+"\n") {
		t.Errorf("script %q (%v) does not start with %q", body, err, Strictness)
	}
}
