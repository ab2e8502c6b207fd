package spec

import (
	"strconv"
	"strings"

	"github.com/gpipe/gpipe/pipeline/dag"
)

// checkCycles reports every dependency cycle once, as "a -> b -> c -> a"
// where "->" reads "needs". The dag package picks each cycle (the shortest
// through the smallest id, neighbours in id order), so the text is the same
// on every run however the steps are ordered in the file.
func (c *checker) checkCycles() {
	g := dag.New()
	for i, st := range c.spec.Steps {
		g.Add(st.ID)
		for _, t := range c.needs[i] {
			// Self-needs were reported by checkNeeds and are not in c.needs.
			g.Connect(st.ID, c.spec.Steps[t].ID)
		}
	}
	for _, ids := range g.Cycles() {
		start := c.byID[ids[0]]
		// Report at the first edge: where start's needs names the next step.
		at := c.spec.Steps[start].Pos
		for j, need := range c.spec.Steps[start].Needs {
			if need == ids[1] {
				at = c.fieldPos(start, "needs["+strconv.Itoa(j)+"]")
				break
			}
		}
		c.errs.add(at, "dependency cycle: %s", strings.Join(ids, " -> "))
	}
}
