package spec

import (
	"sort"
	"strconv"
	"strings"
)

// checkCycles reports every dependency cycle once, as "a -> b -> c -> a"
// where "->" reads "needs". Each cycle starts at the smallest id in it and
// follows the smallest next id, so the text is the same on every run however
// the steps are ordered in the file.
func (c *checker) checkCycles() {
	for _, scc := range c.sccs() {
		if len(scc) < 2 {
			continue // self-needs were reported by checkNeeds
		}
		in := make(map[int]bool, len(scc))
		start := scc[0]
		for _, v := range scc {
			in[v] = true
			if c.spec.Steps[v].ID < c.spec.Steps[start].ID {
				start = v
			}
		}
		path := c.shortestCycle(start, in)
		ids := make([]string, len(path))
		for i, v := range path {
			ids[i] = c.spec.Steps[v].ID
		}
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

// shortestCycle walks needs breadth-first from start, inside one strongly
// connected component, visiting needs in id order, back to start.
func (c *checker) shortestCycle(start int, in map[int]bool) []int {
	prev := map[int]int{start: -1}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		next := c.sortedNeeds(v)
		for _, w := range next {
			if w == start {
				path := []int{start}
				for x := v; x != start; x = prev[x] {
					path = append(path, x)
				}
				// path is start, v, ..., reversed after the first element.
				for l, r := 1, len(path)-1; l < r; l, r = l+1, r-1 {
					path[l], path[r] = path[r], path[l]
				}
				return append(path, start)
			}
			if _, seen := prev[w]; seen || !in[w] {
				continue
			}
			prev[w] = v
			queue = append(queue, w)
		}
	}
	return []int{start, start} // unreachable for a real component
}

func (c *checker) sortedNeeds(v int) []int {
	out := append([]int(nil), c.needs[v]...)
	sort.Slice(out, func(i, j int) bool { return c.spec.Steps[out[i]].ID < c.spec.Steps[out[j]].ID })
	return out
}

// sccs returns the strongly connected components of the needs graph
// (Tarjan's algorithm, iterative so that a 10,000-step chain cannot grow the
// stack without bound).
func (c *checker) sccs() [][]int {
	n := len(c.spec.Steps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var out [][]int
	var st []int
	next := 0
	type frame struct{ v, child int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = next, next
		next++
		st = append(st, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.child < len(c.needs[f.v]) {
				w := c.needs[f.v][f.child]
				f.child++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					st = append(st, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] {
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := st[len(st)-1]
					st = st[:len(st)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				out = append(out, comp)
			}
		}
	}
	return out
}
