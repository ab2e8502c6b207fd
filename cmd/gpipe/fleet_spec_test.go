package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFleetSpecPlans: specs/unet-brain-5fold-fleet.yaml validates, and its
// plan pairs every fold's steps with that fold's alone (train-fold-2 after
// preprocess-fold-2, teardown-fold-2 after evaluate-fold-2), waits for every
// fold only in cv-dice, and bills each fold's stack as spot with the
// on-demand worst case.
func TestFleetSpecPlans(t *testing.T) {
	sp := filepath.Join(repoRoot(t), "specs", "unet-brain-5fold-fleet.yaml")
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"plan", "-p", "results_bucket=my-results", sp}, strings.NewReader(""), &stdout, &stderr,
		func(string) string { return "" }); code != 0 {
		t.Fatalf("plan exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String() + stderr.String()
	for _, re := range []string{
		`(?m)^train-fold-2\s+train-unet\s+preprocess-fold-2$`,
		`(?m)^host-setup-fold-4\s+prepare-host\s+provision-fold-4$`,
		`(?m)^teardown-fold-2\s+teardown\s+evaluate-fold-2$`,
		`(?m)^cv-dice\s+shell\s+evaluate-fold-0,evaluate-fold-1,evaluate-fold-2,evaluate-fold-3,evaluate-fold-4$`,
		`provision-fold-3: dl1.24xlarge in us-east-1 spot at ~\$6.55/h .*falls back to on-demand`,
		`worst case \$603.06 \(the instance runs its whole max_lifetime at \$13.11/h`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("plan lacks %s:\n%s", re, out)
		}
	}
}
