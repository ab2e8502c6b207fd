package schemas

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("pipeline.schema.json", bytes.NewReader(Pipeline())); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("pipeline.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

func TestSchemaValidates(t *testing.T) {
	s := compile(t)
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"minimal", `{"version":1,"name":"p","steps":[{"id":"a","type":"shell","with":{"run":"true"}}]}`, true},
		{"expr for integer", `{"version":1,"name":"p","steps":[{"id":"a","type":"train-unet","with":{"task":"01","hpus":"${{ params.hpus }}"}}]}`, true},
		{"hpus too many", `{"version":1,"name":"p","steps":[{"id":"a","type":"train-unet","with":{"task":"01","hpus":9}}]}`, false},
		{"shell without run", `{"version":1,"name":"p","steps":[{"id":"a","type":"shell","with":{}}]}`, false},
		{"shell without with", `{"version":1,"name":"p","steps":[{"id":"a","type":"shell"}]}`, false},
		{"unknown type", `{"version":1,"name":"p","steps":[{"id":"a","type":"nope"}]}`, false},
		{"unknown step field", `{"version":1,"name":"p","steps":[{"id":"a","type":"shell","with":{"run":"x"},"colour":1}]}`, false},
		{"bad duration", `{"version":1,"name":"p","steps":[{"id":"a","type":"shell","with":{"run":"x"},"timeout":"90 minutes"}]}`, false},
		{"good duration", `{"version":1,"name":"p","steps":[{"id":"a","type":"shell","with":{"run":"x"},"timeout":"1h30m"}]}`, true},
		{"version 2", `{"version":2,"name":"p","steps":[{"id":"a","type":"shell","with":{"run":"x"}}]}`, false},
		{"teardown", `{"version":1,"name":"p","steps":[{"id":"t","type":"teardown","if":"always()","with":{"stack":"${{ steps.p.outputs.stack_name }}","empty_buckets":false}}]}`, true},
		{"fetch task name", `{"version":1,"name":"p","steps":[{"id":"f","type":"fetch-msd","with":{"task":"Task01_BrainTumour"}}]}`, true},
		{"fetch task bad", `{"version":1,"name":"p","steps":[{"id":"f","type":"fetch-msd","with":{"task":"11"}}]}`, false},
		{"hosts", `{"version":1,"name":"p","hosts":{"gaudi":{"address":"ssm:i-1","cards":8}},"steps":[{"id":"a","type":"shell","host":"gaudi","with":{"run":"x"}}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.doc), &v); err != nil {
				t.Fatal(err)
			}
			err := s.Validate(v)
			if (err == nil) != tt.ok {
				t.Fatalf("valid = %v, want %v (err: %v)", err == nil, tt.ok, err)
			}
		})
	}
}

// TestEveryStepTypeHasWith keeps the type enum and the with-<type> $defs in
// step: a type without its $defs entry would accept any with.
func TestEveryStepTypeHasWith(t *testing.T) {
	var doc struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(Pipeline(), &doc); err != nil {
		t.Fatal(err)
	}
	var step struct {
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(doc.Defs["step"], &step); err != nil {
		t.Fatal(err)
	}
	if len(step.Properties.Type.Enum) != 9 {
		t.Fatalf("step types = %v, want 9", step.Properties.Type.Enum)
	}
	for _, typ := range step.Properties.Type.Enum {
		if _, ok := doc.Defs["with-"+typ]; !ok {
			t.Errorf("no $defs/with-%s", typ)
		}
		if !strings.Contains(string(doc.Defs["step"]), `"#/$defs/with-`+typ+`"`) {
			t.Errorf("step does not select with-%s", typ)
		}
	}
}
