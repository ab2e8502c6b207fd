package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/pipeline/state"
)

// machines is a provider of numbered machines and a log of where each step
// ran, for the host-loss tests.
type machines struct {
	mu       sync.Mutex
	made     int
	replaced []string            // StepRun.Replace of each provision
	ran      map[string][]string // step → addresses it ran on, in order
	attempts map[string][]int    // step → attempt numbers
	lose     map[string]int      // step → how many of its first attempts lose their host
}

func (m *machines) runner() fn {
	return func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.ran[sr.StepID] = append(m.ran[sr.StepID], sr.Host.Address)
		m.attempts[sr.StepID] = append(m.attempts[sr.StepID], sr.Attempt)
		if sr.StepID == "up" {
			m.made++
			m.replaced = append(m.replaced, sr.Replace)
			return pipeline.Result{Outputs: map[string]string{"host": fmt.Sprintf("ssm:m-%d", m.made)}}, nil
		}
		if m.lose[sr.StepID] > 0 {
			m.lose[sr.StepID]--
			return pipeline.Result{}, fmt.Errorf("run command: %w", &pipeline.HostLostError{Host: sr.Host, Zone: "zone-a",
				Cause: errors.New("spot interruption notice")})
		}
		return pipeline.Result{}, nil
	}
}

// hostChain: up makes a machine; setup and work run on it; local runs here
// after up; down cleans up, always.
func hostChain(maxLosses int) *spec.Spec {
	onM := func(s spec.Step) spec.Step { s.Host = "m"; return s }
	work := onM(step("work", "setup", "local"))
	work.Retry = spec.Retry{Attempts: 3} // host losses are not retries
	down := withIf(step("down", "work"), "always()")
	down.Cleans = []string{"up"}
	down.With = map[string]any{"machine": "${{ steps.up.outputs.host }}"}
	s := newSpec(step("up"), onM(step("setup", "up")), step("local", "up"), work, down)
	s.Hosts = []spec.HostDecl{{Name: "m", Address: "${{ steps.up.outputs.host }}"}}
	s.MaxHostLosses = maxLosses
	return s
}

func newMachines(t *testing.T, lose int) (*harness, *machines) {
	m := &machines{ran: map[string][]string{}, attempts: map[string][]int{}, lose: map[string]int{"work": lose}}
	h := newHarness(t, nil)
	h.reg["fake"] = m.runner()
	return h, m
}

// TestHostLossRerunsTheHostsChain: a step whose host is lost twice, with
// max_host_losses: 2, reruns with the steps that made and prepared its host
// (up with Replace naming the lost machine, setup), on a new machine each
// time; a step elsewhere that already succeeded (local) does not rerun, the
// cleanup runs once for the last machine, attempts keep counting, and each
// loss is in the run state.
func TestHostLossRerunsTheHostsChain(t *testing.T) {
	h, m := newMachines(t, 2)
	if err := h.run(t.Context(), h.plan(hostChain(2)), Options{}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"up":    {"local", "local", "local"},
		"setup": {"ssm:m-1", "ssm:m-2", "ssm:m-3"},
		"work":  {"ssm:m-1", "ssm:m-2", "ssm:m-3"},
		"local": {"local"},
		"down":  {"local"},
	}
	for id, w := range want {
		if !slices.Equal(m.ran[id], w) {
			t.Errorf("%s ran on %v, want %v", id, m.ran[id], w)
		}
	}
	if !slices.Equal(m.replaced, []string{"", "ssm:m-1", "ssm:m-2"}) {
		t.Errorf("Replace = %q", m.replaced)
	}
	if !slices.Equal(m.attempts["work"], []int{1, 2, 3}) || !slices.Equal(m.attempts["up"], []int{1, 2, 3}) {
		t.Errorf("attempts: work %v, up %v", m.attempts["work"], m.attempts["up"])
	}
	if len(h.sleeps) != 0 {
		t.Errorf("a host loss waited for a retry's backoff: %v", h.sleeps)
	}
	h.wantStatus(map[string]state.StepStatus{"up": state.StepSucceeded, "setup": state.StepSucceeded,
		"work": state.StepSucceeded, "local": state.StepSucceeded, "down": state.StepSucceeded})
	losses := h.j.Snapshot().HostLosses
	if len(losses) != 2 {
		t.Fatalf("host losses = %+v", losses)
	}
	for i, l := range losses {
		addr := fmt.Sprintf("ssm:m-%d", i+1)
		if l.Step != "work" || l.Attempt != i+1 || l.Host != "m" || l.Address != addr || l.Zone != "zone-a" ||
			!strings.Contains(l.Cause, "spot interruption notice") || l.Time.IsZero() || l.Start.IsZero() || l.Failed != "" ||
			!slices.Equal(l.Rerun, []string{"up", "setup", "work"}) {
			t.Errorf("loss %d = %+v", i, l)
		}
		// What the lost machine was survives the rerun that replaces it.
		if got := l.Providers["up"]["host"]; got != addr || len(l.Providers) != 1 {
			t.Errorf("loss %d: providers %v, want up's outputs naming %s", i, l.Providers, addr)
		}
	}
	if ev := h.eventsOf(HostLost, "work"); len(ev) != 2 || !strings.Contains(ev[1].Reason, "host loss 2 of 2 allowed; running again: up, setup, work") {
		t.Errorf("HostLost events: %+v", ev)
	}
	if a := h.stepState("work").Attempts; len(a) != 3 || !strings.Contains(a[0].Error, "host m (ssm:m-1) lost in zone-a") {
		t.Errorf("work attempts: %+v", a)
	}
}

// TestHostLossBeyondTheLimitFails: with max_host_losses: 1 the second loss
// fails the step, naming the limit; cleanup still runs, for the last machine.
// With the default of 0 the first loss fails it, and the step's own retries
// do not try the lost host again.
func TestHostLossBeyondTheLimitFails(t *testing.T) {
	for _, tc := range []struct {
		max, ups int
		msg      string
	}{
		{1, 2, "host m (ssm:m-2) lost in zone-a: spot interruption notice; not replaced: this is host loss 2 and max_host_losses is 1"},
		{0, 1, "not replaced: max_host_losses is 0"},
	} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			h, m := newMachines(t, 2)
			err := h.run(t.Context(), h.plan(hostChain(tc.max)), Options{})
			var fe *FailedError
			var le *pipeline.HostLossLimitError
			if !errors.As(err, &fe) || !slices.Equal(fe.Steps, []string{"work"}) || !errors.As(err, &le) ||
				!errors.Is(err, pipeline.ErrHostLostLimit) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v", err)
			}
			if m.made != tc.ups || len(m.ran["work"]) != tc.ups || !slices.Equal(m.ran["down"], []string{"local"}) {
				t.Errorf("made %d machines; work ran on %v, down %v", m.made, m.ran["work"], m.ran["down"])
			}
			losses := h.j.Snapshot().HostLosses
			if len(losses) != tc.ups || !strings.Contains(losses[tc.ups-1].Failed, "max_host_losses is") || losses[tc.ups-1].Rerun != nil {
				t.Errorf("losses = %+v", losses)
			}
			h.wantStatus(map[string]state.StepStatus{"work": state.StepFailed, "down": state.StepSucceeded})
		})
	}
}

// TestHostLossSeenTwiceCountsOnce: two steps running on the machine both see
// its loss; the host is replaced once, both rerun once, and max_host_losses:
// 1 is enough.
func TestHostLossSeenTwiceCountsOnce(t *testing.T) {
	m := &machines{ran: map[string][]string{}, attempts: map[string][]int{}, lose: map[string]int{"a": 1, "b": 1}}
	h := newHarness(t, nil)
	both := make(chan struct{}, 2)
	base := m.runner()
	h.reg["fake"] = fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		if sr.Attempt == 1 && (sr.StepID == "a" || sr.StepID == "b") {
			// Both are running on the machine when it goes.
			both <- struct{}{}
			if !waitFor(ctx, func() bool { return len(both) == 2 }) {
				return pipeline.Result{}, ctx.Err()
			}
		}
		return base(ctx, sr)
	})
	onM := func(s spec.Step) spec.Step { s.Host = "m"; return s }
	s := newSpec(step("up"), onM(step("a", "up")), onM(step("b", "up")), onM(step("after", "a", "b")))
	s.Hosts = []spec.HostDecl{{Name: "m", Address: "${{ steps.up.outputs.host }}"}}
	s.MaxHostLosses = 1
	if err := h.run(t.Context(), h.plan(s), Options{}); err != nil {
		t.Fatal(err)
	}
	if m.made != 2 || !slices.Equal(m.ran["a"], []string{"ssm:m-1", "ssm:m-2"}) || !slices.Equal(m.ran["b"], []string{"ssm:m-1", "ssm:m-2"}) ||
		!slices.Equal(m.ran["after"], []string{"ssm:m-2"}) {
		t.Errorf("made %d; ran %v", m.made, m.ran)
	}
	if l := h.j.Snapshot().HostLosses; len(l) != 1 {
		t.Errorf("losses = %+v", l)
	}
}

// TestHostLossResetsAStepThatFinishedOnTheLostHost: a step on the machine
// that succeeds after another step saw the machine lost (it finished its
// work just before the machine went) runs again on the new machine: what it
// made is gone.
func TestHostLossResetsAStepThatFinishedOnTheLostHost(t *testing.T) {
	m := &machines{ran: map[string][]string{}, attempts: map[string][]int{}, lose: map[string]int{"a": 1}}
	h := newHarness(t, nil)
	aLost := make(chan struct{})
	base := m.runner()
	h.reg["fake"] = fn(func(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
		if sr.StepID == "b" && sr.Attempt == 1 {
			// b finishes only once a's loss was handled (up runs again).
			if !recv(ctx, aLost) {
				return pipeline.Result{}, ctx.Err()
			}
		}
		res, err := base(ctx, sr)
		if sr.StepID == "up" && sr.Replace != "" {
			close(aLost)
		}
		return res, err
	})
	onM := func(s spec.Step) spec.Step { s.Host = "m"; return s }
	s := newSpec(step("up"), onM(step("a", "up")), onM(step("b", "up")), onM(step("after", "a", "b")))
	s.Hosts = []spec.HostDecl{{Name: "m", Address: "${{ steps.up.outputs.host }}"}}
	s.MaxHostLosses = 1
	if err := h.run(t.Context(), h.plan(s), Options{}); err != nil {
		t.Fatal(err)
	}
	if m.made != 2 || !slices.Equal(m.ran["b"], []string{"ssm:m-1", "ssm:m-2"}) || !slices.Equal(m.ran["after"], []string{"ssm:m-2"}) {
		t.Errorf("made %d; ran %v", m.made, m.ran)
	}
	if l := h.j.Snapshot().HostLosses; len(l) != 1 || !slices.Equal(l[0].Rerun, []string{"up", "a", "b"}) {
		t.Errorf("losses = %+v", l)
	}
}
