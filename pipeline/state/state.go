// Package state defines a run's durable state, the Store interface that keeps it
// (a local folder, S3), and the Journal that applies changes with group commit
// and compare-and-swap, holding the run's lease while it drives the run.
package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SchemaVersion is the version of the state document this gpipe writes. A
// document with a higher version is refused rather than overwritten.
const SchemaVersion = 1

// Run is the whole durable state of one run, stored as one JSON document so a
// single compare-and-swap covers steps, outputs and the lease together.
type Run struct {
	SchemaVersion int               `json:"schema_version"`
	ID            string            `json:"id"`
	Pipeline      string            `json:"pipeline"`
	SpecFile      string            `json:"spec_file"`
	SpecDigest    string            `json:"spec_digest"`      // sha256 of the spec snapshot
	Params        map[string]string `json:"params,omitempty"` // never a secret param's value
	// SecretParams names the secret params the run was given a value for.
	// Their values are not saved: a resume must be given them again (or read
	// them from the spec's from:), rather than fall back to a default.
	SecretParams []string  `json:"secret_params,omitempty"`
	Status       RunStatus `json:"status"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	Lease        *Lease    `json:"lease,omitempty"`
	// Runners holds a random token of every runner that drove the run, each
	// durable before its runner starts any step: a process a runner starts
	// for step S carries RUNNER/S/N in $GPIPE_ATTEMPT_TOKEN (see
	// pipeline.StepRun.Token), so a later runner finds whatever any of them
	// left running, even if it died before anything else about the process
	// was saved.
	Runners []string         `json:"runners,omitempty"`
	Steps   map[string]*Step `json:"steps"`
	Order   []string         `json:"order"` // step ids in plan order, for stable listings
	// HostLosses lists every host lost under a running step (spec
	// max_host_losses), in the order they happened.
	HostLosses []HostLoss `json:"host_losses,omitempty"`
}

// HostLoss records one host lost under a running step and what the run did
// about it.
type HostLoss struct {
	Step    string    `json:"step"`    // the step that saw the loss
	Attempt int       `json:"attempt"` // its attempt that was lost
	Host    string    `json:"host"`    // the spec's host name
	Address string    `json:"address"` // the machine lost, e.g. ssm:i-0abc
	Zone    string    `json:"zone,omitempty"`
	Time    time.Time `json:"time"`  // when the loss was seen
	Start   time.Time `json:"start"` // when the lost attempt started: its work until Time is lost
	Cause   string    `json:"cause"`
	// Rerun are the steps reset to run again (the host's provisioning and
	// the steps that ran or were to run on it); empty when the loss was not
	// replaced, and Failed says why.
	Rerun  []string `json:"rerun,omitempty"`
	Failed string   `json:"failed,omitempty"`
	// Providers holds the outputs of the steps that made the lost host (by
	// step id), as they were when it was lost: a rerun replaces them, and
	// reports still need to know what the lost machine was and since when
	// it ran (what it cost).
	Providers map[string]map[string]string `json:"providers,omitempty"`
}

// RunStatus is the status of a whole run.
type RunStatus string

const (
	RunPending     RunStatus = "pending"
	RunRunning     RunStatus = "running"
	RunSucceeded   RunStatus = "succeeded"
	RunFailed      RunStatus = "failed"
	RunInterrupted RunStatus = "interrupted"
	// RunDetached: the runner stopped waiting (a CI job about to time out)
	// while steps kept running remotely; resuming the run reattaches to them.
	RunDetached RunStatus = "detached"
)

// StepStatus is the status of one step.
type StepStatus string

const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepCancelled StepStatus = "cancelled"
	StepSkipped   StepStatus = "skipped"
)

// Step is the state of one (matrix-expanded) step.
type Step struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Status    StepStatus        `json:"status"`
	DefDigest string            `json:"def_digest"` // digest of the step's definition, to spot edits on resume
	Needs     []string          `json:"needs,omitempty"`
	Attempts  []Attempt         `json:"attempts,omitempty"`
	Outputs   map[string]string `json:"outputs,omitempty"`
	Resume    map[string]string `json:"resume,omitempty"` // see pipeline.StepRun.Resume
	Reason    string            `json:"reason,omitempty"` // why skipped or cancelled
	// Released is when what the step made (a stack) was deleted outside a
	// cleanup step of the run, by `gpipe teardown`: a resume makes it again
	// when a step that runs needs it, and cost estimates end there.
	Released *time.Time `json:"released,omitempty"`
}

// Attempt records one try of a step.
type Attempt struct {
	N        int        `json:"n"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	Error    string     `json:"error,omitempty"`
	Log      string     `json:"log"` // log name for Store.ReadLog, e.g. "train.1"
	// Token is the attempt's RUNNER/STEP/N token (see Run.Runners).
	Token string `json:"token,omitempty"`
}

// Lease says which runner drives a run. It is renewed by heartbeat; a lease
// whose Expires has passed may be taken over.
type Lease struct {
	Owner    string    `json:"owner"` // unique per runner process
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"`
}

// Version identifies one stored version of a run document (an ETag, a
// generation counter). Stores compare it on Save.
type Version string

// Store keeps runs. Implementations: pipeline/store/file, pipeline/store/s3.
// Every implementation must pass pipeline/store/storetest. A store never
// changes a document or record it is given: the Journal keeps reading parts
// of it after the call (see encoder).
type Store interface {
	// Create stores the first version of a run document. ErrExists if the run exists.
	Create(ctx context.Context, runID string, doc []byte) (Version, error)
	// Load returns the current document and its version. ErrNotFound if absent.
	Load(ctx context.Context, runID string) ([]byte, Version, error)
	// Save replaces the document only if its version is still v. ErrConflict
	// when someone else wrote since; ErrNotFound when the run is gone.
	Save(ctx context.Context, runID string, doc []byte, v Version) (Version, error)
	// List returns the ids of all runs, in no particular order.
	List(ctx context.Context) ([]string, error)

	// PutBlob and GetBlob keep a run's other files: the spec snapshot ("spec.yaml").
	PutBlob(ctx context.Context, runID, name string, data []byte) error
	GetBlob(ctx context.Context, runID, name string) ([]byte, error)

	// AppendLog adds to a step attempt's log; ReadLog reads it from offset, so
	// `gpipe logs --follow` can poll. Logs are visible to readers on other
	// machines while the step runs.
	AppendLog(ctx context.Context, runID, name string, p []byte) error
	ReadLog(ctx context.Context, runID, name string, offset int64) ([]byte, error)

	// String names the store for messages ("file://.gpipe", "s3://bucket/prefix").
	String() string
}

var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed by another writer")
)

// HeldError says a run's lease is held by another live runner.
type HeldError struct {
	RunID string
	Lease Lease
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("run %s is driven by another runner (host %s, pid %d) since %s, lease renewed %s; "+
		"wait for it, or take over with --force if you are sure it is gone",
		e.RunID, e.Lease.Host, e.Lease.PID, e.Lease.Acquired.UTC().Format(time.RFC3339),
		e.Lease.Renewed.UTC().Format(time.RFC3339))
}

// NewerSchemaError says a run document was written by a newer gpipe.
type NewerSchemaError struct {
	RunID   string
	Version int
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("run %s was written by a newer gpipe (state schema %d, this gpipe knows %d): upgrade gpipe",
		e.RunID, e.Version, SchemaVersion)
}
