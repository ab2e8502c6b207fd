package schemas

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite ../docs/spec.md from the schema")

const referencePath = "../docs/spec.md"

// TestReferenceUpToDate fails when docs/spec.md is not what the schema and
// the template render, so the reference page cannot go stale.
func TestReferenceUpToDate(t *testing.T) {
	got, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll("../docs", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(referencePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v (generate it: go generate ./schemas/...)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is stale: run go generate ./schemas/... (or go test ./schemas -run TestReferenceUpToDate -update)", referencePath)
	}
}

func TestReferenceCoversEveryField(t *testing.T) {
	got, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	doc := string(got)
	for _, want := range []string{
		"### `shell`", "### `provision-stack`", "### `teardown`", "### `prepare-host`", "### `prepare-disk`", "### `fetch-msd`",
		"### `preprocess`", "### `train-unet`", "### `evaluate`",
		"| `run` (required) | string |", "| `hpus` | integer 1–8, or expression `${{ }}` | `1` |",
		"| `instance_type` | string | `\"dl1.24xlarge\"` |", "| `max_backoff` |", "| `cards` |", "| `secret` |",
		"train-fold-0", "always()",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}
