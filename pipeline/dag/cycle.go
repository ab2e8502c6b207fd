package dag

import (
	"slices"
	"strings"
)

// CycleError reports that a graph is not acyclic. Each cycle starts and ends
// at its smallest vertex (by string order), follows edges forward, and is the
// shortest such cycle, with ties broken by vertex name; cycles are sorted by
// their first vertex. The message is therefore the same on every run,
// whatever order the vertices and edges were added in.
type CycleError struct {
	Cycles [][]string
}

func (e *CycleError) Error() string {
	var b strings.Builder
	if len(e.Cycles) == 1 {
		b.WriteString("cycle: ")
	} else {
		b.WriteString("cycles: ")
	}
	for k, c := range e.Cycles {
		if k > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strings.Join(c, " -> "))
	}
	return b.String()
}

// Cycles returns one cycle for every strongly connected component that has
// one (see CycleError for the form), or nil when g is acyclic.
func (g *Graph) Cycles() [][]string {
	var out [][]string
	for _, comp := range g.components() {
		if len(comp) == 1 && !g.HasEdge(g.names[comp[0]], g.names[comp[0]]) {
			continue
		}
		out = append(out, g.cycleIn(comp))
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// cycleIn finds the shortest cycle through the smallest-named vertex of a
// strongly connected component by breadth-first search, visiting neighbours
// in name order so the answer is deterministic.
func (g *Graph) cycleIn(comp []int) []string {
	in := make(map[int]bool, len(comp))
	start := comp[0]
	for _, v := range comp {
		in[v] = true
		if g.names[v] < g.names[start] {
			start = v
		}
	}
	prev := map[int]int{}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		next := slices.Clone(g.down[v])
		slices.SortFunc(next, func(a, b int) int { return strings.Compare(g.names[a], g.names[b]) })
		for _, w := range next {
			if !in[w] {
				continue
			}
			if w == start {
				path := []string{g.names[start]}
				for u := v; u != start; u = prev[u] {
					path = append(path, g.names[u])
				}
				path = append(path, g.names[start])
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if _, seen := prev[w]; !seen {
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	// Unreachable for a real strongly connected component.
	return []string{g.names[start]}
}

// components returns the strongly connected components (Tarjan's algorithm,
// iterative so a 10,000-vertex chain does not recurse 10,000 deep).
func (g *Graph) components() [][]int {
	n := len(g.names)
	const unvisited = -1
	idx := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range idx {
		idx[i] = unvisited
	}
	var (
		stack   []int
		comps   [][]int
		counter int
	)
	type frame struct{ v, next int }
	for root := range n {
		if idx[root] != unvisited {
			continue
		}
		call := []frame{{v: root}}
		idx[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.next < len(g.down[f.v]) {
				w := g.down[f.v][f.next]
				f.next++
				switch {
				case idx[w] == unvisited:
					idx[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{v: w})
				case onStack[w]:
					low[f.v] = min(low[f.v], idx[w])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == idx[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				comps = append(comps, comp)
			}
		}
	}
	return comps
}
