package spec

import (
	"strings"
	"testing"
)

// TestMaxHostLosses: max_host_losses decodes, defaults to 0, and the schema
// rejects a negative count with the field's position.
func TestMaxHostLosses(t *testing.T) {
	src := `version: 1
name: spot
max_host_losses: 2
steps:
  - id: up
    type: shell
    with: {run: "true"}
`
	s, err := testLoader().Parse("spot.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxHostLosses != 2 {
		t.Errorf("MaxHostLosses = %d, want 2", s.MaxHostLosses)
	}
	if s, err := testLoader().Parse("x.yaml", []byte(strings.Replace(src, "max_host_losses: 2\n", "", 1))); err != nil || s.MaxHostLosses != 0 {
		t.Errorf("default: %d %v", s.MaxHostLosses, err)
	}
	_, err = testLoader().Parse("neg.yaml", []byte(strings.Replace(src, "max_host_losses: 2", "max_host_losses: -1", 1)))
	if err == nil || !strings.Contains(err.Error(), "neg.yaml:3:") {
		t.Errorf("negative count: %v", err)
	}
}
