package state_test

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

func TestAcquireRules(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	holder := state.Lease{Owner: "holder", Host: "host-a", PID: 42, Acquired: t0, Renewed: t0, Expires: t0.Add(30 * time.Second)}
	tests := []struct {
		name  string
		lease *state.Lease
		now   time.Time
		host  string
		alive bool
		force bool
		owner string
		held  bool
	}{
		{name: "no lease", now: t0, host: "host-a", alive: true},
		{name: "fresh, other host", lease: &holder, now: t0.Add(10 * time.Second), host: "host-b", alive: true, held: true},
		{name: "fresh, other host, holder pid unknown here", lease: &holder, now: t0.Add(10 * time.Second), host: "host-b", held: true},
		{name: "fresh, same host, holder alive", lease: &holder, now: t0.Add(10 * time.Second), host: "host-a", alive: true, held: true},
		{name: "fresh, same host, holder gone", lease: &holder, now: t0.Add(10 * time.Second), host: "host-a"},
		{name: "expired", lease: &holder, now: t0.Add(30 * time.Second), host: "host-b", alive: true},
		{name: "force", lease: &holder, now: t0.Add(time.Second), host: "host-b", alive: true, force: true},
		{name: "own lease", lease: &holder, now: t0.Add(time.Second), host: "host-b", alive: true, owner: "holder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMem(t)
			r := newRun("r")
			r.SchemaVersion = state.SchemaVersion
			r.Lease = tc.lease
			j0, err := state.Create(t.Context(), s, r, state.LeaseOptions{Owner: "creator"})
			if err != nil {
				t.Fatal(err)
			}
			j0.Close(t.Context()) // releases; now plant the lease under test
			doc := mustJSON(t, withLease(read(t, s, "r"), tc.lease))
			_, v, _ := s.Load(t.Context(), "r")
			if _, err := s.Save(t.Context(), "r", doc, v); err != nil {
				t.Fatal(err)
			}
			owner := tc.owner
			if owner == "" {
				owner = "me"
			}
			var probed []int
			j, err := state.Acquire(t.Context(), s, "r", state.LeaseOptions{
				Owner: owner, Host: tc.host, PID: 7, Force: tc.force,
				Now:          func() time.Time { return tc.now },
				ProcessAlive: func(pid int) bool { probed = append(probed, pid); return tc.alive },
			})
			var he *state.HeldError
			if tc.held {
				if !errors.As(err, &he) {
					t.Fatalf("got %v, want *HeldError", err)
				}
				if he.Lease.Host != "host-a" || he.Lease.PID != 42 || !he.Lease.Acquired.Equal(t0) {
					t.Fatalf("HeldError does not say who holds the run since when: %+v", he.Lease)
				}
				if got := read(t, s, "r").Lease; got.Owner != "holder" {
					t.Fatalf("refused Acquire changed the lease: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			defer j.Close(t.Context())
			l := read(t, s, "r").Lease
			if l.Owner != owner || l.Host != tc.host || l.PID != 7 || !l.Expires.Equal(tc.now.Add(state.DefaultTTL)) {
				t.Fatalf("stored lease %+v", l)
			}
			for _, p := range probed {
				if p != 42 {
					t.Fatalf("probed pid %d, want only the holder's 42", p)
				}
			}
		})
	}
}

func withLease(r *state.Run, l *state.Lease) *state.Run { r.Lease = l; return r }

// TestConcurrentAcquire: of runners acquiring one run at the same moment,
// exactly one gets it; the others learn who holds it.
func TestConcurrentAcquire(t *testing.T) {
	s := newMem(t)
	j0 := create(t, s, "r", opts("creator"))
	if err := j0.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	js := make([]*state.Journal, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			o := opts("runner-" + string(rune('a'+i)))
			js[i], errs[i] = state.Acquire(t.Context(), s, "r", o)
		})
	}
	close(start)
	testtool.Wait(t, &wg, "the concurrent Acquire calls")
	won := 0
	for i := range n {
		var he *state.HeldError
		switch {
		case errs[i] == nil:
			won++
			defer js[i].Close(t.Context())
		case !errors.As(errs[i], &he):
			t.Fatalf("runner %d: %v", i, errs[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d runners acquired the run, want 1", won)
	}
}

// TestCloneCoversAllFields guards Clone against fields added to the state
// types later: every field must be set in the sample and survive the copy
// without sharing memory.
func TestCloneCoversAllFields(t *testing.T) {
	t0 := time.Unix(1, 0).UTC()
	code := 3
	released := t0.Add(time.Hour)
	r := &state.Run{
		SchemaVersion: 1, ID: "r", Pipeline: "p", SpecFile: "f", SpecDigest: "d",
		Params: map[string]string{"a": "b"}, SecretParams: []string{"token"}, Status: state.RunRunning, Created: t0, Updated: t0,
		Lease: &state.Lease{Owner: "o", Host: "h", PID: 1, Acquired: t0, Renewed: t0, Expires: t0},
		Steps: map[string]*state.Step{"s": {
			ID: "s", Type: "shell", Status: state.StepFailed, DefDigest: "x", Needs: []string{"n"},
			Attempts: []state.Attempt{{N: 1, Start: t0, End: &t0, ExitCode: &code, Error: "e", Log: "s.1", Token: "t"}},
			Outputs:  map[string]string{"k": "v"}, Resume: map[string]string{"r": "v"}, Reason: "why", Released: &released,
		}},
		Order: []string{"s"}, Runners: []string{"r"},
		HostLosses: []state.HostLoss{{Step: "s", Attempt: 1, Host: "h", Address: "ssm:i-1", Zone: "z", Time: t0, Start: t0,
			Cause: "c", Rerun: []string{"s"}, Failed: "f", Providers: map[string]map[string]string{"p": {"k": "v"}}}},
	}
	for _, v := range []any{*r, *r.Lease, *r.Steps["s"], r.Steps["s"].Attempts[0], r.HostLosses[0]} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%s.%s is not set in the sample: set it and make sure Clone copies it",
					rv.Type().Name(), rv.Type().Field(i).Name)
			}
		}
	}
	c := r.Clone()
	if !reflect.DeepEqual(c, r) {
		t.Fatalf("Clone differs:\n%+v\n%+v", c, r)
	}
	c.Params["a"] = "x"
	c.Lease.Owner = "x"
	c.Steps["s"].Needs[0] = "x"
	c.Steps["s"].Outputs["k"] = "x"
	c.Steps["s"].Resume["r"] = "x"
	*c.Steps["s"].Attempts[0].ExitCode = 9
	*c.Steps["s"].Attempts[0].End = t0.Add(time.Hour)
	*c.Steps["s"].Released = t0
	c.Order[0] = "x"
	c.HostLosses[0].Rerun[0] = "x"
	if r.HostLosses[0].Rerun[0] != "s" {
		t.Fatal("Clone shares a host loss's rerun list")
	}
	c.HostLosses[0].Providers["p"]["k"] = "x"
	if r.HostLosses[0].Providers["p"]["k"] != "v" {
		t.Fatal("Clone shares a host loss's provider outputs")
	}
	if r.Params["a"] != "b" || r.Lease.Owner != "o" || r.Steps["s"].Needs[0] != "n" || r.Steps["s"].Outputs["k"] != "v" ||
		r.Steps["s"].Resume["r"] != "v" || *r.Steps["s"].Attempts[0].ExitCode != 3 ||
		!r.Steps["s"].Attempts[0].End.Equal(t0) || !r.Steps["s"].Released.Equal(released) || r.Order[0] != "s" {
		t.Fatal("Clone shares memory with the original")
	}
}
