package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

func TestCreateUpdateRead(t *testing.T) {
	s := newMem(t)
	j := create(t, s, "r1", opts("me"))
	if _, err := state.Create(t.Context(), s, newRun("r1"), opts("other")); !errors.Is(err, state.ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	err := j.Update(t.Context(), func(r *state.Run) {
		r.Steps["a"] = &state.Step{ID: "a", Status: state.StepSucceeded, Outputs: map[string]string{"k": "v"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	r := read(t, s, "r1")
	if r.SchemaVersion != state.SchemaVersion || r.Steps["a"].Outputs["k"] != "v" || r.Lease.Owner != "me" {
		t.Fatalf("stored run: %+v", r)
	}
	snap := j.Snapshot()
	snap.Steps["a"].Outputs["k"] = "changed"
	if j.Snapshot().Steps["a"].Outputs["k"] != "v" {
		t.Fatal("Snapshot shares memory with the journal")
	}
	if err := j.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := read(t, s, "r1"); r.Lease != nil {
		t.Fatalf("lease not released on Close: %+v", r.Lease)
	}
	if err := j.Update(t.Context(), func(*state.Run) {}); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Update after Close: got %v, want ErrClosed", err)
	}
}

// TestGroupCommit: many concurrent Updates against a slow store share Saves,
// and each Update returns only once its change is in the store.
func TestGroupCommit(t *testing.T) {
	cs := &countingStore{Store: newMem(t), delay: 5 * time.Millisecond}
	j := create(t, cs, "r", opts("me"))
	cs.saves.Store(0)
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("s%d", i)
			err := j.Update(t.Context(), func(r *state.Run) {
				r.Steps[id] = &state.Step{ID: id, Status: state.StepSucceeded}
			})
			if err != nil {
				errs <- err
				return
			}
			doc, _, err := cs.Load(t.Context(), "r")
			if err != nil {
				errs <- err
				return
			}
			if !strings.Contains(string(doc), `"id":"`+id+`"`) {
				errs <- fmt.Errorf("Update of %s returned before its change was stored", id)
			}
		})
	}
	testtool.Wait(t, &wg, "the concurrent Updates")
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	saves := cs.saves.Load()
	t.Logf("%d concurrent updates, %d saves", n, saves)
	if saves >= n/4 {
		t.Fatalf("%d updates took %d saves: not coalesced", n, saves)
	}
	if got := len(read(t, cs, "r").Steps); got != n {
		t.Fatalf("stored %d steps, want %d", got, n)
	}
}

func TestPostIsSavedSoon(t *testing.T) {
	s := newMem(t)
	j := create(t, s, "r", opts("me"))
	j.Post(func(r *state.Run) { r.Status = state.RunFailed })
	deadline := time.Now().Add(5 * time.Second)
	for read(t, s, "r").Status != state.RunFailed {
		if time.Now().After(deadline) {
			t.Fatal("a Post was not saved within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Posts wait for a save that something awaits and ride along with it: a run
// of short steps saves once per step finished, not also once per step started.
func TestPostRidesAlongWithUpdate(t *testing.T) {
	cs := &countingStore{Store: newMem(t)}
	j := create(t, cs, "r", opts("me"))
	for i := range 3 {
		id := fmt.Sprint("s", i)
		before := cs.saves.Load()
		j.PostStep(id, func(r *state.Run) { r.Steps[id] = &state.Step{ID: id, Status: state.StepRunning} })
		j.PostStep(id, func(r *state.Run) { r.Steps[id].Resume = map[string]string{"k": "v"} })
		if err := j.UpdateStep(t.Context(), id, func(r *state.Run) { r.Steps[id].Status = state.StepSucceeded }); err != nil {
			t.Fatal(err)
		}
		if n := cs.saves.Load() - before; n != 1 {
			t.Errorf("step %d: two Posts and an Update took %d saves, want 1", i, n)
		}
		if st := read(t, cs, "r").Steps[id]; st.Status != state.StepSucceeded || st.Resume["k"] != "v" {
			t.Errorf("step %d stored as %+v", i, st)
		}
	}
	// Sync saves what was posted without waiting for the delay.
	j.Post(func(r *state.Run) { r.Status = state.RunFailed })
	start := time.Now()
	if err := j.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if read(t, cs, "r").Status != state.RunFailed {
		t.Fatal("Sync returned before the Post was stored")
	}
	t.Logf("Sync of a Post took %s", time.Since(start))
}

func TestLostOnConflict(t *testing.T) {
	s := newMem(t)
	j := create(t, s, "r", opts("me"))
	// Another runner (forcing) writes the run.
	j2, err := state.Acquire(t.Context(), s, "r", state.LeaseOptions{Owner: "thief", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close(t.Context())
	err = j.Update(t.Context(), func(r *state.Run) { r.Status = state.RunFailed })
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Update after a takeover: got %v, want ErrConflict", err)
	}
	select {
	case <-j.Lost():
	default:
		t.Fatal("Lost not closed")
	}
	if !errors.Is(j.Err(), state.ErrConflict) {
		t.Fatalf("Err = %v", j.Err())
	}
	r := read(t, s, "r")
	if r.Lease.Owner != "thief" || r.Status != state.RunRunning {
		t.Fatalf("the lost journal overwrote the new owner's state: %+v %s", r.Lease, r.Status)
	}
	if err := j.Close(t.Context()); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Close of a lost journal: got %v", err)
	}
}

func TestLostOnDelete(t *testing.T) {
	s := newMem(t)
	j := create(t, s, "r", opts("me"))
	if err := s.Delete(t.Context(), "r"); err != nil {
		t.Fatal(err)
	}
	err := j.Update(t.Context(), func(r *state.Run) { r.Status = state.RunFailed })
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Update of a deleted run: got %v, want ErrNotFound", err)
	}
	<-j.Lost()
}

func TestTransientSaveErrorsRetried(t *testing.T) {
	cs := &countingStore{Store: newMem(t)}
	j := create(t, cs, "r", opts("me"))
	cs.setFail(3, nil)
	if err := j.Update(t.Context(), func(r *state.Run) { r.Status = state.RunSucceeded }); err != nil {
		t.Fatalf("Update through 3 transient failures: %v", err)
	}
	if read(t, cs, "r").Status != state.RunSucceeded {
		t.Fatal("change not stored")
	}
}

func TestPersistentSaveErrorsFail(t *testing.T) {
	cs := &countingStore{Store: newMem(t)}
	opt := opts("me")
	opt.TTL = 400 * time.Millisecond
	j := create(t, cs, "r", opt)
	cs.setFail(-1, nil)
	start := time.Now()
	err := j.Update(t.Context(), func(r *state.Run) { r.Status = state.RunSucceeded })
	if !errors.Is(err, errFlaky) || !strings.Contains(err.Error(), "giving up") {
		t.Fatalf("Update against a dead store: got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s, want about the TTL", d)
	}
	<-j.Lost()
}

func TestUpdateContextEnds(t *testing.T) {
	cs := &countingStore{Store: newMem(t), delay: 50 * time.Millisecond}
	j := create(t, cs, "r", opts("me"))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer cancel()
	if err := j.Update(ctx, func(r *state.Run) { r.Status = state.RunFailed }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if err := j.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if read(t, cs, "r").Status != state.RunFailed {
		t.Fatal("the change of a timed-out Update was dropped")
	}
}

func TestHeartbeat(t *testing.T) {
	s := newMem(t)
	opt := opts("me")
	opt.TTL = 150 * time.Millisecond
	j := create(t, s, "r", opt)
	first := read(t, s, "r").Lease
	time.Sleep(250 * time.Millisecond)
	l := read(t, s, "r").Lease
	if !l.Renewed.After(first.Renewed) || !l.Expires.After(first.Expires) || !l.Acquired.Equal(first.Acquired) {
		t.Fatalf("lease not renewed: first %+v, now %+v", first, l)
	}
	_ = j
}

func TestDecodeErrors(t *testing.T) {
	good, _ := json.Marshal(newRun("r"))
	newer := strings.Replace(string(good), `"schema_version":0`, `"schema_version":99`, 1)
	tests := []struct {
		name, doc string
		check     func(error) bool
	}{
		{"truncated", string(good[:len(good)/2]), isCorrupt},
		{"garbage", "\x00\x01 not json", isCorrupt},
		{"empty", "", isCorrupt},
		{"no schema", `{"id":"r"}`, isCorrupt},
		{"other run", strings.Replace(strings.Replace(newer, "99", "1", 1), `"id":"r"`, `"id":"x"`, 1), isCorrupt},
		{"newer", newer, func(err error) bool {
			var ne *state.NewerSchemaError
			return errors.As(err, &ne) && ne.Version == 99
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMem(t)
			if _, err := s.Create(t.Context(), "r", []byte(tc.doc)); err != nil {
				t.Fatal(err)
			}
			_, err := state.Acquire(t.Context(), s, "r", opts("me"))
			if !tc.check(err) {
				t.Fatalf("Acquire: unexpected error %v", err)
			}
			if !strings.Contains(err.Error(), "run r") {
				t.Fatalf("error does not name the run: %v", err)
			}
			if _, err := state.Read(t.Context(), s, "r"); !tc.check(err) {
				t.Fatalf("Read: unexpected error %v", err)
			}
			if doc, _, _ := s.Load(t.Context(), "r"); string(doc) != tc.doc {
				t.Fatalf("document was overwritten: %q", doc)
			}
		})
	}
}

func isCorrupt(err error) bool {
	var ce *state.CorruptError
	return errors.As(err, &ce) && strings.Contains(err.Error(), "memory://")
}

// TestApplyDurableHurry: an applied change is not stored before its post
// delay unless hurried; Durable reports its Mark once it is, and its channel
// wakes whoever watches.
func TestApplyDurableHurry(t *testing.T) {
	s := newMem(t)
	o := opts("me")
	o.PostDelay = time.Hour // only Hurry can make the change durable in time
	j := create(t, s, "r", o)
	m, err := j.Apply("s1", func(r *state.Run) { r.Steps["s1"] = &state.Step{ID: "s1", Status: state.StepSucceeded} })
	if err != nil {
		t.Fatal(err)
	}
	stored, changed := j.Durable()
	if stored >= m {
		t.Fatalf("Durable %d before any save, want below the change's Mark %d", stored, m)
	}
	time.Sleep(20 * time.Millisecond)
	if st := read(t, s, "r").Steps["s1"]; st != nil {
		t.Fatalf("an applied change was stored before its post delay or a Hurry: %+v", st)
	}
	j.Hurry(m)
	deadline := time.After(5 * time.Second)
	for stored < m {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("Durable %d five seconds after Hurry(%d)", stored, m)
		}
		stored, changed = j.Durable()
	}
	if st := read(t, s, "r").Steps["s1"]; st == nil || st.Status != state.StepSucceeded {
		t.Fatalf("Durable passed the change's Mark but the store has %+v", st)
	}
}
