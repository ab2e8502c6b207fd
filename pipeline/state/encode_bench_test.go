package state

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchRun is a run of n finished shell steps shaped like bench/gendag's,
// with a lease and a runner, as the Journal holds it mid-run.
func benchRun(n int) *Run {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 123456789, time.UTC)
	r := &Run{SchemaVersion: SchemaVersion, ID: "20261205-120000-abcd", Pipeline: "dag", SpecFile: "/tmp/spec.yaml",
		SpecDigest: strings.Repeat("d", 64), Status: RunRunning, Created: t0, Updated: t0,
		Lease:   &Lease{Owner: "host:123:abcdef", Host: "host", PID: 123, Acquired: t0, Renewed: t0, Expires: t0.Add(30 * time.Second)},
		Runners: []string{"abcdef0123456789"}, Steps: map[string]*Step{}}
	for i := range n {
		id := fmt.Sprintf("s%04d", i)
		end, code := t0.Add(time.Duration(i)*time.Millisecond+3*time.Millisecond), 0
		st := &Step{ID: id, Type: "shell", Status: StepSucceeded, DefDigest: strings.Repeat("e", 64),
			Attempts: []Attempt{{N: 1, Start: t0.Add(time.Duration(i) * time.Millisecond), End: &end, ExitCode: &code,
				Log: id + ".1", Token: "abcdef0123456789/" + id + "/1"}}}
		if i >= 50 {
			st.Needs = []string{fmt.Sprintf("s%04d", i-50), fmt.Sprintf("s%04d", i-49)}
		}
		r.Steps[id] = st
		r.Order = append(r.Order, id)
	}
	return r
}

// BenchmarkEncodeRecord is one journal record of a step that just finished:
// what a save of a run of short steps costs in encoding.
func BenchmarkEncodeRecord(b *testing.B) {
	r := benchRun(500)
	e := newEncoder()
	if _, err := e.encode(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("s%04d", i%500)
		e.touch(id)
		rec, err := e.record(r)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(rec)))
	}
}

// BenchmarkEncodeSnapshot is a whole-run snapshot of 500 steps, every step
// encoded again (a whole-run change).
func BenchmarkEncodeSnapshot(b *testing.B) {
	r := benchRun(500)
	e := newEncoder()
	b.ReportAllocs()
	for b.Loop() {
		e.touch("")
		doc, err := e.encode(r)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(doc)))
	}
}

// BenchmarkEncodeHeader is the run's own fields that every record carries,
// encoded afresh each time since Updated changes with every change.
func BenchmarkEncodeHeader(b *testing.B) {
	r := benchRun(0)
	r.Steps, r.Order = nil, nil
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = r.appendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendString is the strings a step holds: ids, digests, tokens.
func BenchmarkAppendString(b *testing.B) {
	ss := []string{"s0001", strings.Repeat("d", 64), "shell", "succeeded", "abcdef0123456789/s0001/1", "2026-12-05"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, s := range ss {
			buf = appendString(buf, s)
		}
	}
}
