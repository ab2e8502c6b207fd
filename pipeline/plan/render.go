package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Formats lists the formats Render accepts.
func Formats() []string { return []string{"text", "mermaid", "dot", "json"} }

// Render writes the plan in format (text, mermaid, dot or json). When status
// is non-nil, nodes show each step's status (and Mermaid/DOT colour them);
// otherwise they show the plan's action where a resume decided one.
func (p *Plan) Render(w io.Writer, format string, status map[string]state.StepStatus) error {
	var err error
	switch format {
	case "text":
		err = p.renderText(w, status)
	case "mermaid":
		err = p.renderMermaid(w, status)
	case "dot":
		err = p.renderDOT(w, status)
	case "json":
		err = p.renderJSON(w, status)
	default:
		return fmt.Errorf("render plan: unknown format %q (want one of %s)", format, strings.Join(Formats(), ", "))
	}
	if err != nil {
		return fmt.Errorf("render plan as %s: %w", format, err)
	}
	return nil
}

// resumed reports whether ForResume set reasons, so renderings show actions.
func (p *Plan) resumed() bool {
	for _, s := range p.Steps {
		if s.Reason != "" {
			return true
		}
	}
	return false
}

// class is the status or action a node is coloured by: the status when known,
// else "reuse" for reused steps, else "" (plain).
func class(s *Step, status map[string]state.StepStatus) string {
	if status != nil {
		if st, ok := status[s.ID]; ok && st != "" {
			return string(st)
		}
		return string(state.StepPending)
	}
	if s.Action == Reuse {
		return "reuse"
	}
	return ""
}

func (p *Plan) renderText(w io.Writer, status map[string]state.StepStatus) error {
	resumed := p.resumed()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "STEP\tTYPE\tNEEDS"
	if status != nil {
		head += "\tSTATUS"
	}
	if resumed {
		head += "\tACTION\tREASON"
	}
	fmt.Fprintln(tw, head)
	for _, s := range p.Steps {
		needs := strings.Join(s.Needs, ",")
		if needs == "" {
			needs = "-"
		}
		line := s.ID + "\t" + s.Spec.Type + "\t" + needs
		if status != nil {
			line += "\t" + class(s, status)
		}
		if resumed {
			line += "\t" + string(s.Action) + "\t" + s.Reason
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if resumed {
		run, reuse := p.Counts()
		if _, err := fmt.Fprintf(w, "\n%d to run, %d reused\n", run, reuse); err != nil {
			return err
		}
	}
	return WriteCharges(w, p.charges)
}

type jsonStep struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Needs     []string          `json:"needs"`
	Matrix    map[string]string `json:"matrix,omitempty"`
	If        string            `json:"if,omitempty"`
	Host      string            `json:"host,omitempty"`
	DefDigest string            `json:"def_digest"`
	Action    Action            `json:"action"`
	Reason    string            `json:"reason,omitempty"`
	Status    state.StepStatus  `json:"status,omitempty"`
}

func (p *Plan) renderJSON(w io.Writer, status map[string]state.StepStatus) error {
	doc := struct {
		Name  string     `json:"name"`
		Steps []jsonStep `json:"steps"`
		// Charges of the billable steps, when the caller priced them.
		Charges []Charge `json:"charges,omitempty"`
	}{Name: p.Spec.Name, Steps: make([]jsonStep, 0, len(p.Steps)), Charges: p.charges}
	for _, s := range p.Steps {
		js := jsonStep{ID: s.ID, Type: s.Spec.Type, Needs: s.Needs, If: s.Spec.If, Host: s.Spec.Host,
			DefDigest: s.DefDigest, Action: s.Action, Reason: s.Reason}
		if js.Needs == nil {
			js.Needs = []string{}
		}
		if len(s.Matrix) > 0 {
			js.Matrix = map[string]string{}
			for _, kv := range s.Matrix {
				js.Matrix[kv.Key] = kv.Value
			}
		}
		if status != nil {
			js.Status = state.StepStatus(class(s, status))
		}
		doc.Steps = append(doc.Steps, js)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
