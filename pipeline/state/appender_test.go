package state_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/file"
)

// meteredStore counts what a Journal writes through Save and Append.
type meteredStore struct {
	state.Appender
	saves, appends, bytes atomic.Int64
}

func (m *meteredStore) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	m.saves.Add(1)
	m.bytes.Add(int64(len(doc)))
	return m.Appender.Save(ctx, runID, doc, v)
}

func (m *meteredStore) Append(ctx context.Context, runID string, rec []byte, v state.Version) (state.Version, error) {
	m.appends.Add(1)
	m.bytes.Add(int64(len(rec)))
	return m.Appender.Append(ctx, runID, rec, v)
}

// drive runs a run of n steps the way the engine does: the steps added in
// one whole-run change, then per step a start and an end (UpdateStep and
// PostStep); with wholeRun, a whole-run change every 50 steps too.
func drive(t *testing.T, j *state.Journal, n int, wholeRun bool) {
	t.Helper()
	ctx := t.Context()
	err := j.Update(ctx, func(r *state.Run) {
		r.Order = nil
		for i := range n {
			id := fmt.Sprintf("s%05d", i)
			r.Steps[id] = &state.Step{ID: id, Type: "shell", Status: state.StepPending, DefDigest: strings.Repeat("d", 64)}
			r.Order = append(r.Order, id)
		}
		r.Runners = append(r.Runners, "runner-1")
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1700000000, 0).UTC()
	for i := range n {
		id := fmt.Sprintf("s%05d", i)
		err := j.UpdateStep(ctx, id, func(r *state.Run) {
			st := r.Steps[id]
			st.Status = state.StepRunning
			st.Attempts = append(st.Attempts, state.Attempt{N: 1, Start: start, Log: id + ".1", Token: "runner-1/" + id + "/1"})
		})
		if err != nil {
			t.Fatal(err)
		}
		j.PostStep(id, func(r *state.Run) {
			st := r.Steps[id]
			end, code := start.Add(time.Second), 0
			st.Status = state.StepSucceeded
			st.Attempts[0].End, st.Attempts[0].ExitCode = &end, &code
			st.Outputs = map[string]string{"out": fmt.Sprint(i)}
		})
		if wholeRun && i%50 == 7 {
			j.Post(func(r *state.Run) { r.Params = map[string]string{"p": fmt.Sprint(i)} }) // a whole-run change
		}
	}
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// What a Journal writes to an Appender store replays to exactly the run it
// holds in memory, read by another process or resumed, on the memory store
// and the file store; and it did use records and snapshots both.
func TestJournalReplaysToTheSameRun(t *testing.T) {
	for name, s := range map[string]state.Appender{"memory": newMem(t), "file": file.New(t.TempDir())} {
		t.Run(name, func(t *testing.T) {
			m := &meteredStore{Appender: s}
			j := create(t, m, "r", opts("me"))
			drive(t, j, 600, true)
			want := j.Snapshot()
			if got := read(t, s, "r"); !reflect.DeepEqual(got, want) {
				t.Fatalf("the run read back differs from the Journal's:\n got %+v\nwant %+v", got, want)
			}
			if m.appends.Load() == 0 || m.saves.Load() < 3 {
				t.Fatalf("%d appends, %d saves: want records and more snapshots than the whole-run changes' (compaction)", m.appends.Load(), m.saves.Load())
			}
			if err := j.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			j2, err := state.Acquire(t.Context(), s, "r", opts("other"))
			if err != nil {
				t.Fatal(err)
			}
			defer j2.Close(context.Background())
			got := j2.Snapshot()
			want.Lease, got.Lease = nil, nil
			want.Updated, got.Updated = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("the resumed run differs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// The bytes a Journal writes per step change stay constant as runs grow
// (records, and snapshots no bigger than the records since the last), where
// rewriting the whole document on every save grows with the run.
func TestJournalBytesPerChangeConstant(t *testing.T) {
	perStep := func(n int) float64 {
		m := &meteredStore{Appender: newMem(t)}
		j := create(t, m, fmt.Sprint("r", n), opts("me"))
		drive(t, j, n, false)
		return float64(m.bytes.Load()) / float64(n)
	}
	small, big := perStep(300), perStep(3000)
	t.Logf("bytes written per step: %.0f at 300 steps, %.0f at 3,000", small, big)
	if big > 2*small {
		t.Fatalf("bytes written per step grew from %.0f at 300 steps to %.0f at 3,000: saves cost the run's size", small, big)
	}
}
