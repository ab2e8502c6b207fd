package spec

import (
	"strings"

	"github.com/gpipe/gpipe/pipeline/expr"
)

// checkInjection warns where a shell step's run: pastes an expression's value
// into the script: the value becomes code, so a quote, `$(...)` or `;` in a
// param, an output or a matrix value runs as a command, and a secret lands in
// the script text. GitHub's hardening guide calls this script injection; its
// fix is to pass the value through an environment variable, which the shell
// never parses as code. Warnings, not errors: the pattern works, and a spec
// author may trust every value it reads.
func (c *checker) checkInjection(warns *errList) {
	for i, st := range c.spec.Steps {
		if st.Type != "shell" || i >= len(c.nodes) {
			continue
		}
		run := c.nodes[i].get("with").get("run")
		s, ok := run.scalar().(string)
		if !ok || !strings.Contains(s, "${{") {
			continue
		}
		t, err := expr.Parse(s)
		if err != nil {
			continue // reported as an error already
		}
		uses := t.Uses()
		for _, sp := range t.Spans() {
			name := "VALUE"
			for _, u := range uses {
				if u.Offset >= sp.Offset && u.Offset < sp.Offset+len(sp.Text) {
					name = envNameFor(u.Ref)
					break
				}
			}
			safe := `"$` + name + `"`
			how := "pass it through env: (" + name + ": " + sp.Text + ") and use " + safe
			if strings.HasPrefix(name, "env.") {
				name = strings.TrimPrefix(name, "env.")
				safe = `"$` + name + `"`
				how = "use " + safe + " (it is in the environment already)"
			}
			warns.add(run.offsetPos(sp.Offset), "warning: step %s: %s is pasted into the script of with.run, where quotes, $(...) or ; in its value run as code: %s",
				c.stepName(i), sp.Text, how)
		}
	}
}

// envNameFor suggests an environment variable for a reference: the last part
// of it, upper-cased (params.results_bucket → RESULTS_BUCKET); env.X stays
// env.X, for the caller to word.
func envNameFor(r expr.Ref) string {
	n := r.Name
	switch r.Kind {
	case "env":
		return "env." + r.Name
	case "steps":
		n = r.Key
	case "run":
		n = "run_" + r.Name
	}
	b := []byte(strings.ToUpper(n))
	for i, ch := range b {
		if (ch < 'A' || ch > 'Z') && (ch < '0' || ch > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
