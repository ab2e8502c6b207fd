package spec

import "time"

// Pos is a place in a spec file. Line and Col are 1-based.
type Pos struct {
	File string
	Line int
	Col  int
}

// Spec is a loaded, validated pipeline spec. Maps that users write in order
// (params, env, matrix) keep that order in slices, so plans and reports are
// stable.
type Spec struct {
	File        string
	Source      []byte // the bytes it was loaded from, for snapshots and digests
	Version     int
	Name        string
	Description string
	Params      []Param
	Env         []KV
	Concurrency int    // 0: the engine's default
	State       string // store URL, "" for the default
	// Budget in US dollars: the run stops (and cleans up) before its
	// estimated instance cost would exceed it; 0 means none.
	Budget float64
	// Resources are the limited resources steps hold (spec resources:), in
	// the order written. KeepGoing (fail_fast: false) lets steps that do
	// not need a failed step go on.
	Resources []Resource
	KeepGoing bool
	// MaxHostLosses is how many lost hosts (spec max_host_losses) one
	// invocation replaces by rerunning the steps that made and used them;
	// 0: a lost host fails its step.
	MaxHostLosses int
	Hosts         []HostDecl
	Steps         []Step
	// Warnings are what is valid but unsafe (an expression pasted into a
	// shell script), sorted by position; the spec loads regardless.
	Warnings Errors
}

// Param is a declared pipeline parameter.
type Param struct {
	Name        string
	Type        string // string, integer, number, boolean
	Default     any    // nil when required
	Enum        []any
	Description string
	// Secret params are never saved or printed (see pipeline/secret).
	Secret bool
	// From references where a secret's value is read at run time
	// ("ssm:/path", "secretsmanager:id"); "" for none.
	From string
	Pos  Pos
}

// KV is one ordered key/value pair (env entries).
type KV struct {
	Key   string
	Value string
}

// HostDecl is a named host declared once and referenced by steps (host: gaudi).
type HostDecl struct {
	Name    string
	Address string // "local", or "ssm:<instance id>", usually an expression
	Cards   int    // accelerator cards available on it (8 on dl1.24xlarge)
	Pos     Pos
}

// Step is one step as written in the spec, before matrix expansion.
type Step struct {
	ID    string
	Type  string
	Needs []string
	// Cleans names upstream steps whose products this step destroys (a
	// teardown cleans its provision step). When it has succeeded, a resume
	// reruns those steps and what follows them instead of reusing them.
	Cleans []string
	// Holds names a resource the step takes a unit of until the step that
	// cleans it has ended ("" for none).
	Holds   string
	With    map[string]any // the type's own parameters; strings may hold ${{ }}
	If      string         // "" means success()
	Retry   Retry
	Timeout time.Duration // 0: none
	Env     []KV
	Matrix  []MatrixAxis
	Host    string // a declared host name, or an address; "" means local
	Pos     Pos    // where the step's mapping starts
	// FieldPos locates the step's fields ("with.task", "host", ...) for error
	// annotations on a failing step.
	FieldPos map[string]Pos
}

// Retry is a step's retry policy. Attempts counts every try, so 1 means no retry.
type Retry struct {
	Attempts   int
	Backoff    time.Duration // first delay
	MaxBackoff time.Duration
	// On, when set, retries only when the failed attempt's log matches one of
	// these regular expressions (the synStatus flake).
	On []string
}

// Resource is a limited resource and the units of it that may be in use at
// once.
type Resource struct {
	Name  string
	Limit int
	Pos   Pos
}

// MatrixAxis is one matrix variable and its values, in the order written.
type MatrixAxis struct {
	Name   string
	Values []any
}
