package steps

import (
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
)

// TestSpecOptionsWords loads specs with what gpipe wires into the loader and
// checks the messages the spec package's goldens show (pipeline/spec's tests
// spell these options out, as they cannot import the step types): an ssm:
// host is accepted, an unknown host offers it, a bad from: names both secret
// sources, a bad MSD task says what a task is.
func TestSpecOptionsWords(t *testing.T) {
	l := spec.NewLoader(SpecOptions())
	ok := "version: 1\nname: o\nsteps:\n  - {id: a, type: shell, host: \"ssm:i-0abc\", with: {run: \"true\"}}\n"
	if _, err := l.Parse("o.yaml", []byte(ok)); err != nil {
		t.Fatalf("ssm: host refused: %v", err)
	}
	cases := []struct{ src, want string }{
		{"version: 1\nname: o\nsteps:\n  - {id: a, type: shell, host: gaudi, with: {run: \"true\"}}\n",
			`step "a": unknown host "gaudi" (declare it under hosts, or use local or ssm:<instance id>)`},
		{"version: 1\nname: o\nparams:\n  tok: {type: string, secret: true, from: \"vault:x\"}\nsteps:\n  - {id: a, type: shell, with: {run: \"true\"}}\n",
			`must be ssm:<parameter name or ARN> or secretsmanager:<secret id or ARN>, not "vault:x"`},
		{"version: 1\nname: o\nsteps:\n  - {id: a, type: fetch-msd, with: {task: \"11\"}}\n",
			`step "a": "task" must be a task number "01" to "10" or a folder name like "Task01_BrainTumour", not "11"`},
	}
	for _, c := range cases {
		_, err := l.Parse("o.yaml", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\ngot  %v\nwant %s", c.src, err, c.want)
		}
	}
}
