package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const spotSpec = `version: 1
name: spot
steps:
  - id: provision
    type: provision-stack
    with: {region: us-east-1, market: spot, fallback: on-demand, max_lifetime: 10h}
`

// TestPlanShowsSpotAndWorstCase: plan shows a spot step's estimated price
// with its basis and the on-demand price, and the worst case at the
// on-demand price, since the step may fall back to it; JSON carries both.
func TestPlanShowsSpotAndWorstCase(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("spec.yaml", []byte(spotSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		var stdout, stderr bytes.Buffer
		app := &App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" },
			Hard: context.Background()}
		if err := app.Main(context.Background(), append([]string{"plan"}, args...)); err != nil {
			t.Fatalf("plan %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	out := run("spec.yaml")
	for _, want := range []string{
		"provision: dl1.24xlarge in us-east-1 spot at ~$6.55/h (on-demand less a typical 50% spot discount; on-demand $13.11/h), falls back to on-demand",
		"worst case $131.10 (the instance runs its whole max_lifetime at $13.11/h, the most it may be charged)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	var doc struct {
		Charges []map[string]any `json:"charges"`
	}
	if err := json.Unmarshal([]byte(run("--format", "json", "spec.yaml")), &doc); err != nil || len(doc.Charges) != 1 {
		t.Fatalf("json: %v %v", doc, err)
	}
	c := doc.Charges[0]
	if c["market"] != "spot" || c["on_demand_price_per_hour_usd"] != 13.11 || c["worst_case_price_per_hour_usd"] != 13.11 || c["worst_case_usd"] != 131.1 {
		t.Errorf("charge %v", c)
	}
}
