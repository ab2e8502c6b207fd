package state

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// checkSnapshot fails t unless the cached encoding of r is json.Marshal(r).
func checkSnapshot(t *testing.T, enc *encoder, r *Run, when string) {
	t.Helper()
	got, err := enc.encode(r)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: cached encoding differs from json.Marshal%s", when, diff(got, want))
	}
}

// checkRecord fails t unless enc's record of the steps touched is what
// encoding/json makes of a record struct holding them.
func checkRecord(t *testing.T, enc *encoder, r *Run, touched []string, when string) {
	t.Helper()
	got, err := enc.record(r)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	header := *r
	header.Steps, header.Order = nil, nil
	x := record{Run: mustMarshal(t, &header), Steps: map[string]json.RawMessage{}}
	for _, id := range touched {
		x.Steps[id] = mustMarshal(t, r.Steps[id]) // null when removed
	}
	want := mustMarshal(t, &x)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: record differs from json.Marshal%s", when, diff(got, want))
	}
	// And it replays to r, as Acquire would read it.
	var before Run
	if err := json.Unmarshal(mustMarshal(t, r), &before); err != nil {
		t.Fatal(err)
	}
	if err := replay(&before, got); err != nil {
		t.Fatalf("%s: replay: %v", when, err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The cached encoding is byte for byte json.Marshal's, after any mix of
// single-step and whole-run changes.
func TestEncoderMatchesFullEncoding(t *testing.T) {
	r := &Run{SchemaVersion: 1, ID: "r", Status: RunRunning, Steps: map[string]*Step{}, Params: map[string]string{"steps": `"steps":null`}}
	enc := newEncoder()
	checkSnapshot(t, enc, r, "empty")
	for i := 0; i < 20; i++ {
		id := "s" + strconv.Itoa(i)
		r.Steps[id] = &Step{ID: id, Status: StepPending}
		r.Order = append(r.Order, id)
	}
	enc.touch("")
	checkSnapshot(t, enc, r, "added all")
	r.Steps["s3"].Status = StepSucceeded
	r.Steps["s3"].Outputs = map[string]string{"k": "v"}
	enc.touch("s3")
	checkSnapshot(t, enc, r, "one step changed")
	delete(r.Steps, "s4")
	enc.touch("s4")
	checkSnapshot(t, enc, r, "one step removed")
	r.Steps["s5"].Attempts = append(r.Steps["s5"].Attempts, Attempt{N: 1, Start: time.Unix(1, 0).UTC(), Log: "s5.1"})
	r.Status = RunSucceeded
	enc.touch("")
	checkSnapshot(t, enc, r, "whole run changed")
	r.Steps = nil
	enc.touch("")
	checkSnapshot(t, enc, r, "no steps map")
}

// Random runs changed at random, a step, a few or all at a time, encode to
// json.Marshal's bytes as snapshots and as records.
func TestEncoderRandomChanges(t *testing.T) {
	for seed := range uint64(60) {
		rnd := rand.New(rand.NewPCG(seed, 3))
		g := &gen{t: t, rnd: rnd, short: true}
		var r Run
		for {
			r = Run{}
			g.fill(reflectValue(&r))
			if _, err := json.Marshal(&r); err == nil {
				break // times RFC 3339 cannot hold are TestAppendJSONMatchesMarshal's
			}
		}
		if r.Steps == nil {
			r.Steps = map[string]*Step{}
		}
		r.SchemaVersion = SchemaVersion // for replay
		delete(r.Steps, "")             // touch("") means every step
		enc := newEncoder()
		checkSnapshot(t, enc, &r, "first")
		for change := range 30 {
			ids := slices.Sorted(maps.Keys(r.Steps))
			var touched []string
			switch k := rnd.IntN(10); {
			case k == 0 || len(ids) == 0: // a whole-run change, then a snapshot
				st := &Step{ID: g.string() + "x", Status: StepPending, Reason: g.string()}
				r.Steps[st.ID] = st
				r.Params = map[string]string{g.string(): g.string()}
				enc.touch("")
				checkSnapshot(t, enc, &r, "whole-run change")
				continue
			case k == 1: // a step removed
				touched = append(touched, ids[rnd.IntN(len(ids))])
				delete(r.Steps, touched[0])
			default: // steps changed
				for range 1 + rnd.IntN(3) {
					id := ids[rnd.IntN(len(ids))]
					var st Step
					if g.fill(reflectValue(&st)); mustMarshalOK(&st) {
						r.Steps[id] = &st
					}
					touched = append(touched, id)
				}
			}
			for _, id := range touched {
				enc.touch(id)
			}
			r.Updated = time.Unix(int64(change), int64(change)).UTC()
			if rnd.IntN(3) == 0 {
				checkSnapshot(t, enc, &r, "snapshot after step changes")
			} else {
				checkRecord(t, enc, &r, touched, "record")
			}
		}
	}
}

func mustMarshalOK(v any) bool {
	_, err := json.Marshal(v)
	return err == nil
}
