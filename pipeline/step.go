package pipeline

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"
)

// Runner is what a step type implements. The engine calls Run once per attempt,
// with expressions in With, Env and Host already resolved.
//
// Run returns the step's outputs. A non-nil error fails the attempt; wrap an
// *ExitError to report a process exit code. Run must return promptly when ctx is
// cancelled, after stopping whatever it started (process group, remote command).
type Runner interface {
	Run(ctx context.Context, sr *StepRun) (Result, error)
}

// ErrDetached is the cancellation cause of a step's context when the runner
// detaches: it stops waiting for the run (a CI job about to be killed) but must
// not stop what steps started elsewhere. A Runner whose work lives on after its
// process (a remote command whose id it saved with SaveResume) returns a
// *DetachedError without cancelling that work; anything else stops its work as
// on any cancellation (a local process cannot outlive the runner) and returns.
var ErrDetached = errors.New("runner detached")

// DetachedError is returned by a Runner that stopped waiting because its
// context was cancelled with ErrDetached, leaving its work running where a
// later attempt can reattach to it through StepRun.Resume. It is a distinct
// type, not ErrDetached itself, because a runner that merely returns its
// context's cause (a killed local process) also yields ErrDetached.
type DetachedError struct {
	// What is left running, for the step log and the state: "SSM command
	// 0a1b... on i-0abc".
	Running string
}

func (e *DetachedError) Error() string {
	if e.Running == "" {
		return ErrDetached.Error() + "; the step keeps running"
	}
	return ErrDetached.Error() + "; still running: " + e.Running
}

func (e *DetachedError) Unwrap() error { return ErrDetached }

// CardDemander is implemented by step types that occupy accelerator cards on
// their host (train-unet with hpus: 8). The engine never hands out more cards
// of a host than the host declares, and passes the granted indices in
// StepRun.Cards.
type CardDemander interface {
	Cards(with map[string]any) int
}

// ScriptRenderer is implemented by host step types, so that `gpipe plan
// --scripts` can print what would run without running it.
type ScriptRenderer interface {
	Script(sr *StepRun) (string, error)
}

// Registry maps a step type name to its Runner.
type Registry interface {
	Lookup(stepType string) (Runner, bool)
}

// StepRun is everything one attempt of one step gets.
type StepRun struct {
	RunID   string
	StepID  string // the id after matrix expansion, e.g. "train-fold-0"
	Type    string
	Attempt int // 1-based
	With    map[string]any
	Env     map[string]string // spec env, then step env (step wins); not the runner's own
	Host    Host
	Timeout time.Duration // 0: none
	Cards   []int         // accelerator card indices granted on Host, if the type demands any

	// Log receives the step's output. It is stored with the run and streamed to
	// the console with the step id in front. Safe for concurrent writes.
	Log io.Writer

	// Resume holds what earlier attempts (also of earlier runners) saved with
	// SaveResume: a CloudFormation stack name, an SSM command id. A step uses it
	// to reattach instead of starting over.
	Resume map[string]string
	// SaveResume makes key=value durable in the run state before it returns.
	SaveResume func(ctx context.Context, key, value string) error
	// NoteResume records key=value like SaveResume but does not wait: it is
	// saved with the next commit of the run state. It is for best-effort data
	// a step can afford to lose when the runner dies before the save (where a
	// local step's processes are, so a resume can stop leftovers), and that
	// is too frequent to pay a durable write for. Nil when the caller keeps
	// no state.
	NoteResume func(key, value string)
	// Previous is the resume data an earlier runner left for this step, given
	// on this run's first attempt even when the step does not reattach (it
	// reruns after --from, an edit or a cleanup): enough to stop what that
	// runner's attempt may still have running, never to reattach to it.
	Previous map[string]string
	// Token identifies this attempt: RUNNER/STEP/N, where RUNNER was durable
	// in the run state before any step started. A host that marks the
	// attempt's processes with it (the local host puts it in their
	// environment as GPIPE_ATTEMPT_TOKEN) lets a later runner find them even
	// if this one dies the moment they start, before anything else about
	// them is saved. Empty when the caller keeps no state.
	Token string
	// Leftovers are prefixes of the tokens of the step's earlier attempts,
	// one RUNNER/STEP/ per runner of the run, this one included. A host that
	// marks processes with Token stops any carrying a token with one of
	// these prefixes, and waits until they are gone, before it starts this
	// attempt: a runner killed with SIGKILL cannot stop what it started, and
	// a step must never run twice at once.
	Leftovers []string
	// Replace is set when the engine reruns this step because the host its
	// outputs named (an address such as ssm:i-0abc) was lost under a running
	// step: the step must make a new host, not find and return the old one,
	// and cleans up what is left of the old one first.
	Replace string
}

// Host says where a host step runs. Name is the spec's host name ("local" when
// none was given); Address is the resolved address: "local" or "ssm:i-0abc...".
type Host struct {
	Name    string
	Address string
	Cards   int // accelerator cards the host declares; 0 means none
}

// Result is what a successful attempt produces.
type Result struct {
	Outputs map[string]string
}

// ExitError reports that a step's process exited with a non-zero code.
type ExitError struct {
	Code int
	Err  error // optional detail
}

func (e *ExitError) Error() string {
	if e.Err != nil {
		return "exit status " + strconv.Itoa(e.Code) + ": " + e.Err.Error()
	}
	return "exit status " + strconv.Itoa(e.Code)
}

func (e *ExitError) Unwrap() error { return e.Err }

// Permanent is implemented by errors that no retry can fix: a bad parameter,
// an archive with entries escaping its destination, a checksum mismatch of
// the source. The engine does not retry an attempt that failed with one.
type Permanent interface {
	Permanent() bool
}

// IsPermanent reports whether err, or an error it wraps, is Permanent.
func IsPermanent(err error) bool {
	var p Permanent
	return errors.As(err, &p) && p.Permanent()
}
