package spec

// The whole plan is bounded, not just one step's matrix: twenty steps of 1,000
// copies, each needing the one before, made a valid 80 KB spec whose plan had
// 19 million edges and took 2.85 GB. A real pipeline has a few dozen steps;
// the limits leave room for generated specs of 10,000 steps.
const (
	MaxTotalCopies = 20_000  // steps after matrix expansion
	MaxGraphEdges  = 200_000 // needs between those copies
)

// checkGraphSize counts the copies and edges the plan would have, without
// building it, and reports the step that pushes either past its limit.
func (c *checker) checkGraphSize() {
	copies := make([]int, len(c.spec.Steps))
	total := 0
	for i := range c.spec.Steps {
		copies[i] = 1
		st := &c.spec.Steps[i]
		for _, ax := range st.Matrix {
			copies[i] *= max(len(ax.Values), 1)
			if copies[i] > MaxMatrixCopies {
				break // reported by checkMatrix
			}
		}
		total += copies[i]
		if total > MaxTotalCopies {
			c.errs.add(c.fieldPos(i, "matrix"), "step %s: the spec expands to more than %d steps (matrix copies included)", c.stepName(i), MaxTotalCopies)
			return
		}
	}
	edges := 0
	for i, needs := range c.needs {
		for _, t := range needs {
			edges += pairedEdges(&c.spec.Steps[i], &c.spec.Steps[t], copies[i], copies[t])
			if edges > MaxGraphEdges {
				c.errs.add(c.fieldPos(i, "needs"), "step %s: the spec's steps have more than %d needs between them once matrices are expanded; pair matrix steps on a shared axis, or need fewer copies", c.stepName(i), MaxGraphEdges)
				return
			}
		}
	}
}

// pairedEdges is how many edges step a's copies get from needing step b, as
// plan.New pairs them: a copy of a needs the copies of b that agree with it
// on every shared axis, or all of b's copies when none does.
func pairedEdges(a, b *Step, na, nb int) int {
	var shared []int // indices into b.Matrix of the axes a has too
	inA := map[string][]any{}
	for _, ax := range a.Matrix {
		inA[ax.Name] = ax.Values
	}
	perCopy := 1
	for j, ax := range b.Matrix {
		if _, ok := inA[ax.Name]; ok {
			shared = append(shared, j)
		} else {
			perCopy *= max(len(ax.Values), 1)
		}
	}
	if len(shared) == 0 {
		return na * nb
	}
	// The copies of a whose shared values all occur in b pair with perCopy
	// copies each; the rest need every copy of b. Count the first kind per
	// shared axis: a's copies split evenly over each axis's values.
	matching := na
	for _, j := range shared {
		inB := map[string]bool{}
		for _, v := range b.Matrix[j].Values {
			inB[scalarString(v)] = true
		}
		vals := inA[b.Matrix[j].Name]
		hit := 0
		for _, v := range vals {
			if inB[scalarString(v)] {
				hit++
			}
		}
		if len(vals) > 0 {
			matching = matching / len(vals) * hit
		}
	}
	return matching*perCopy + (na-matching)*nb
}
