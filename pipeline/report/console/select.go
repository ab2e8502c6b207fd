package console

import (
	"io"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/report/gha"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// Setting is what New needs to pick and configure a reporter.
type Setting struct {
	// Getenv reads the environment (os.Getenv): GITHUB_ACTIONS, NO_COLOR, TERM.
	Getenv func(string) string
	// Terminal says whether the output is a terminal (x/term.IsTerminal).
	Terminal bool
	// Width returns the terminal's columns; nil: 80.
	Width func() int
	// Plan is the plan being run: its step ids size the live view and its
	// spec positions place failure annotations. May be nil.
	Plan *plan.Plan
	// Secrets are masked first in GitHub Actions (gha.SecretValues).
	Secrets []string
	// Dir is the working directory, for annotation paths.
	Dir string
}

// New picks the reporter for where gpipe runs: GitHub inside GitHub Actions
// (GITHUB_ACTIONS=true), Live on a terminal (not TERM=dumb), Plain otherwise.
func New(w io.Writer, s Setting) Reporter {
	if s.Getenv("GITHUB_ACTIONS") == "true" {
		opt := GitHubOptions{
			Paths:   gha.Paths{Workspace: s.Getenv("GITHUB_WORKSPACE"), Dir: s.Dir},
			Secrets: s.Secrets,
		}
		if s.Plan != nil {
			opt.StepPos = PlanPos(s.Plan)
		}
		return NewGitHub(w, opt)
	}
	if s.Terminal && s.Getenv("TERM") != "dumb" {
		opt := LiveOptions{Color: ColorEnabled(s.Getenv), Width: s.Width}
		if s.Plan != nil {
			for _, st := range s.Plan.Steps {
				opt.Steps = append(opt.Steps, st.ID)
			}
		}
		return NewLive(w, opt)
	}
	return NewPlain(w)
}

// PlanPos returns where each expanded step of p is defined in its spec, for
// GitHubOptions.StepPos.
func PlanPos(p *plan.Plan) func(step string) (spec.Pos, bool) {
	return func(step string) (spec.Pos, bool) {
		if st := p.Step(step); st != nil && st.Spec != nil {
			return st.Spec.Pos, true
		}
		return spec.Pos{}, false
	}
}
