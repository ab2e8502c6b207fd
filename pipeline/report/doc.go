// Package report turns a run into something people read: console reporters
// that consume the engine's events while a run goes (Plain for logs and pipes,
// Live for a terminal, GitHub inside GitHub Actions), and summaries of a run's
// saved state (Markdown for $GITHUB_STEP_SUMMARY and `gpipe report`, JSON with
// stable field names, Table for `gpipe status`).
//
// Summaries are built from state.Run alone, not from a plan: `gpipe status`
// and `gpipe report` only have the saved state of a run, possibly written by
// another machine, and the state already holds every expanded step with its
// needs. Markdown and JSON therefore render their own Mermaid graph from the
// run (node ids are positional, n0, n1, ..., so any step id is safe) and show
// the same data everywhere.
//
// Every summary lists the run's host losses (what was lost, when, why, what
// ran again, the time lost) and estimates what its machines cost: each
// machine a provision step made, lost ones included, priced by what the
// step types know (Resources, Pricer, and UsagePricer for spot prices),
// against the on-demand price.
//
// The GitHub Actions helpers (workflow commands, $GITHUB_OUTPUT) live here too
// so that the CLI wires one package: they are plain functions over io.Writer,
// testable against golden files.
package report
