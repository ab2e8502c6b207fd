package steps

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gpipe/gpipe/schemas"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/host"
)

// schemaStepTypes returns the step type enum of the schema, and the
// description of each type's with-<type> definition.
func schemaStepTypes(t *testing.T) ([]string, map[string]string) {
	t.Helper()
	var doc struct {
		Defs map[string]struct {
			Description string `json:"description"`
			Properties  struct {
				Type struct {
					Enum []string `json:"enum"`
				} `json:"type"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.Pipeline(), &doc); err != nil {
		t.Fatal(err)
	}
	types := doc.Defs["step"].Properties.Type.Enum
	if len(types) == 0 {
		t.Fatal("the schema's step definition has no type enum")
	}
	desc := map[string]string{}
	for _, name := range types {
		desc[name] = doc.Defs["with-"+name].Description
	}
	return types, desc
}

// TestRegistryMatchesSchema: a spec the schema accepts names only step types
// that run, and every step type that runs is one a spec may name.
func TestRegistryMatchesSchema(t *testing.T) {
	noAWS := func(context.Context, string) (sdkaws.Config, error) {
		return sdkaws.Config{}, errors.New("no AWS in this test")
	}
	reg := NewRegistry(&Executors{Local: &host.Local{}}, aws.New(aws.Options{LoadConfig: noAWS}))
	got := reg.Types()
	want, _ := schemaStepTypes(t)
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("registry step types %q, schema step types %q", got, want)
	}
	for _, name := range want {
		if _, ok := reg.Lookup(name); !ok {
			t.Errorf("Lookup(%q) finds nothing", name)
		}
	}
}

// TestStepTypesDocumented: every step type has a description in the schema,
// a section in docs/spec.md (generated from the schema; see
// schemas.TestReferenceUpToDate) and a place in the README's list of types.
func TestStepTypesDocumented(t *testing.T) {
	types, desc := schemaStepTypes(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	spec, readme := read("docs/spec.md"), read("README.md")
	_, list, ok := strings.Cut(readme, "**Steps** are typed:")
	list, _, _ = strings.Cut(list, "\n- ")
	if !ok {
		t.Fatal("README.md has no \"**Steps** are typed:\" list")
	}
	for _, name := range types {
		if strings.TrimSpace(desc[name]) == "" {
			t.Errorf("%s: the schema's with-%s has no description", name, name)
		}
		if !strings.Contains(spec, "\n### `"+name+"`\n") {
			t.Errorf("%s: docs/spec.md has no section for it", name)
		}
		if !strings.Contains(list, "`"+name+"`") {
			t.Errorf("%s: missing from README.md's list of step types:%s", name, list)
		}
	}
}

// TestKeyOutputs: the outputs the step types declare are the ones reports
// showed when the report package listed them itself (mean_dice, instance_id,
// stack_name, ckpt, in that order), so moving the list changed no report.
func TestKeyOutputs(t *testing.T) {
	got := NewRegistry(&Executors{}, &aws.Steps{}).KeyOutputs()
	want := []string{"mean_dice", "instance_id", "stack_name", "ckpt"}
	if !slices.Equal(got, want) {
		t.Errorf("KeyOutputs() = %q, want %q", got, want)
	}
}
