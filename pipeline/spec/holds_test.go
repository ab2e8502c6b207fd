package spec

import (
	"strings"
	"testing"
)

// TestResourcesHoldsFailFast: resources, holds and fail_fast decode; a held
// resource must be declared, and the error points at the holds line.
func TestResourcesHoldsFailFast(t *testing.T) {
	src := `version: 1
name: fleet
fail_fast: false
resources: {stacks: 2}
steps:
  - id: up
    type: shell
    holds: stacks
    with: {run: "true"}
`
	s, err := testLoader().Parse("fleet.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !s.KeepGoing || len(s.Resources) != 1 || s.Resources[0] != (Resource{Name: "stacks", Limit: 2, Pos: s.Resources[0].Pos}) || s.Steps[0].Holds != "stacks" {
		t.Errorf("decoded %+v %+v", s.Resources, s.Steps[0])
	}
	if s, err := testLoader().Parse("x.yaml", []byte(strings.Replace(src, "fail_fast: false\n", "", 1))); err != nil || s.KeepGoing {
		t.Errorf("fail_fast defaults to true: %v %v", s.KeepGoing, err)
	}
	_, err = testLoader().Parse("bad.yaml", []byte(strings.Replace(src, "holds: stacks", "holds: stack", 1)))
	if err == nil || !strings.Contains(err.Error(), `bad.yaml:8:12: step "up" holds "stack", which is not declared under resources`) {
		t.Errorf("err = %v", err)
	}
	_, err = testLoader().Parse("zero.yaml", []byte(strings.Replace(src, "{stacks: 2}", "{stacks: 0}", 1)))
	if err == nil {
		t.Error("a limit of 0 was accepted")
	}
}
