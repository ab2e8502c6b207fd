package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/gpipe/gpipe/internal/shell"
	"github.com/gpipe/gpipe/pipeline/state"
)

// RunAbandoned is the status summaries show for a run whose state says it is
// running (or about to) while no runner drives it: its lease expired, so the
// runner died, lost its network, or its machine went away.
const RunAbandoned state.RunStatus = "abandoned"

// Abandoned says who last drove an abandoned run and what to do about it.
type Abandoned struct {
	// StoredStatus is the status the state document still holds.
	StoredStatus state.RunStatus `json:"stored_status"`
	Host         string          `json:"host,omitempty"`
	PID          int             `json:"pid,omitempty"`
	// Since is when the runner's lease ran out (zero when it left none).
	Since time.Time `json:"since"`
	// Holding lists the provision steps whose stacks may still exist, and
	// bill, with nobody to tear them down.
	Holding []string `json:"holding,omitempty"`
	// Advice is what to do, as command lines.
	Advice []string `json:"advice"`
}

// Abandonment returns how r was abandoned, or nil when a runner drives it or
// it ended. stateURL goes into the commands it advises; res tells which steps
// hold resources (nil: none).
func Abandonment(r *state.Run, stateURL string, now time.Time, res Resources) *Abandoned {
	if r.Status != state.RunRunning && r.Status != state.RunPending {
		return nil
	}
	if r.Lease != nil && now.Before(r.Lease.Expires) {
		return nil
	}
	a := &Abandoned{StoredStatus: r.Status, Holding: holdsResources(r, res)}
	if l := r.Lease; l != nil {
		a.Host, a.PID, a.Since = l.Host, l.PID, l.Expires
	}
	a.Advice = []string{ResumeCommand(stateURL, r.ID)}
	if len(a.Holding) > 0 {
		a.Advice = append(a.Advice, teardownCommand(stateURL, r.ID))
	}
	return a
}

// Line says it in one line: "runner on HOST pid N gone since T".
func (a *Abandoned) Line() string {
	if a.Host == "" {
		return "no runner drives it (its runner left no lease)"
	}
	return fmt.Sprintf("runner on %s pid %d gone since %s", a.Host, a.PID, a.Since.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// Todo says what to do, in one sentence.
func (a *Abandoned) Todo() string {
	if len(a.Holding) == 0 {
		return "continue it with `" + a.Advice[0] + "`"
	}
	return fmt.Sprintf("it still holds billable resources (the stack of %s): continue it with `%s`, "+
		"or delete them with `%s`", strings.Join(a.Holding, ", "), a.Advice[0], a.Advice[1])
}

func teardownCommand(stateURL, runID string) string {
	args := []string{"gpipe", "teardown"}
	if stateURL != "" {
		args = append(args, "--state", shell.Quote(stateURL))
	}
	return strings.Join(append(args, shell.Quote(runID)), " ")
}
