// Package pipeline holds what the engine and the step implementations agree on: the
// contract a step type fulfils (Runner) and what it is handed for one attempt (StepRun).
//
// Sub-packages do the work: spec loads and validates YAML specs, expr evaluates
// ${{ }} expressions, dag orders steps, plan expands matrices and decides what a
// resume reuses, engine runs a plan, state defines run state and the Store
// interface, and store/* implement stores. Nothing under pipeline imports steps.
package pipeline
