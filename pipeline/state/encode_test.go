package state

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// The cached encoding must decode to exactly what a full encoding decodes to,
// after any mix of single-step and whole-run changes.
func TestEncoderMatchesFullEncoding(t *testing.T) {
	r := &Run{SchemaVersion: 1, ID: "r", Status: RunRunning, Steps: map[string]*Step{}, Params: map[string]string{"steps": `"steps":null`}}
	enc := newEncoder()
	check := func(when string) {
		t.Helper()
		got, err := enc.encode(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b Run
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: cached encoding does not decode: %v\n%s", when, err, got)
		}
		full, _ := json.Marshal(r)
		if err := json.Unmarshal(full, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: cached encoding differs:\n%s\nwant\n%s", when, got, full)
		}
	}
	check("empty")
	for i := 0; i < 20; i++ {
		id := "s" + strconv.Itoa(i)
		r.Steps[id] = &Step{ID: id, Status: StepPending}
	}
	enc.touch("")
	check("added all")
	r.Steps["s3"].Status = StepSucceeded
	r.Steps["s3"].Outputs = map[string]string{"k": "v"}
	enc.touch("s3")
	check("one step changed")
	delete(r.Steps, "s4")
	enc.touch("s4")
	check("one step removed")
	r.Steps["s5"].Attempts = append(r.Steps["s5"].Attempts, Attempt{N: 1, Start: time.Unix(1, 0).UTC(), Log: "s5.1"})
	r.Status = RunSucceeded
	enc.touch("")
	check("whole run changed")
}
