package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/schemas"
)

// Big specs validate each step shape once (see compiledSchema.shape), which
// holds only while the step schema looks at a step's id and needs through
// their own properties alone: no condition, dependency or other keyword may
// name them.
func TestStepSchemaLooksAtIDAndNeedsAlone(t *testing.T) {
	var s struct {
		Defs map[string]map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.Pipeline(), &s); err != nil {
		t.Fatal(err)
	}
	step := s.Defs["step"]
	var props map[string]json.RawMessage
	if err := json.Unmarshal(step["properties"], &props); err != nil {
		t.Fatal(err)
	}
	var needs map[string]json.RawMessage
	_ = json.Unmarshal(props["needs"], &needs)
	for k := range needs {
		switch k {
		case "description":
		case "type":
			if string(needs[k]) != `"array"` {
				t.Errorf("needs is of type %s; revisit shape", needs[k])
			}
		case "items":
			var items map[string]any
			_ = json.Unmarshal(needs[k], &items)
			if len(items) != 1 || items["type"] != "string" {
				t.Errorf("needs items are %s, not plain strings; revisit shape", needs[k])
			}
		default:
			t.Errorf("needs has keyword %q; revisit shape", k)
		}
	}
	if got := string(props["id"]); !strings.Contains(got, `"$ref"`) || !strings.Contains(got, "#/$defs/identifier") {
		t.Errorf("id is no longer an identifier: %s; revisit shape", got)
	}
	for k, v := range step {
		if k == "properties" || k == "description" {
			continue
		}
		if k == "required" { // id must be there; shape needs it valid anyway
			continue
		}
		if strings.Contains(string(v), `"id"`) || strings.Contains(string(v), `"needs"`) {
			t.Errorf("step keyword %s names id or needs: %s; revisit shape", k, v)
		}
	}
}

// Steps that share a shape with a valid step are skipped; a step whose id or
// needs is wrong is validated on its own and reported where it is.
func TestBigSpecShapesKeepErrors(t *testing.T) {
	src := string(bigSpec(400))
	src = strings.Replace(src, "  - id: s350\n", "  - id: 9bad\n", 1)
	src = strings.Replace(src, "    needs: [s300, s307]\n", "    needs: s300\n", 1)
	_, err := testLoader().Parse("big.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"9bad", "needs"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	t.Log(msg)
}
