// Package dag is a small directed-graph package that knows nothing of
// pipelines: vertices are strings, an edge from A to B says A comes before B.
//
// It offers what the planner and the spec validator need: a topological order
// that is stable (among vertices that are ready at the same time, the one added
// first comes first, so a spec written in dependency order keeps its order),
// cycle detection whose report does not depend on map iteration order, and
// ancestor/descendant queries. Vertices are kept as dense integer indexes so
// that graphs of tens of thousands of vertices cost O(V+E) per query.
package dag

import (
	"container/heap"
)

// Graph is a directed graph over string vertices. The zero value is not
// usable; call New. A Graph is not safe for concurrent mutation; concurrent
// reads are fine.
type Graph struct {
	index map[string]int
	names []string
	down  [][]int // down[i]: vertices that come after i (i → j)
	up    [][]int // up[j]: vertices that come before j
	edges map[uint64]struct{}
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{index: map[string]int{}, edges: map[uint64]struct{}{}}
}

// Add adds vertex v if it is not there yet and reports whether it was added.
func (g *Graph) Add(v string) bool {
	if _, ok := g.index[v]; ok {
		return false
	}
	g.index[v] = len(g.names)
	g.names = append(g.names, v)
	g.down = append(g.down, nil)
	g.up = append(g.up, nil)
	return true
}

// Connect adds the edge from → to (from comes before to), adding either
// vertex when missing. Adding an edge twice is a no-op.
func (g *Graph) Connect(from, to string) {
	g.Add(from)
	g.Add(to)
	f, t := g.index[from], g.index[to]
	key := uint64(f)<<32 | uint64(uint32(t))
	if _, ok := g.edges[key]; ok {
		return
	}
	g.edges[key] = struct{}{}
	g.down[f] = append(g.down[f], t)
	g.up[t] = append(g.up[t], f)
}

// Has reports whether v is a vertex of g.
func (g *Graph) Has(v string) bool {
	_, ok := g.index[v]
	return ok
}

// HasEdge reports whether the edge from → to exists.
func (g *Graph) HasEdge(from, to string) bool {
	f, ok1 := g.index[from]
	t, ok2 := g.index[to]
	if !ok1 || !ok2 {
		return false
	}
	_, ok := g.edges[uint64(f)<<32|uint64(uint32(t))]
	return ok
}

// Len returns the number of vertices.
func (g *Graph) Len() int { return len(g.names) }

// Upstream returns the direct predecessors of v (the vertices with an edge to
// v) in the order the edges were added. Nil when v is unknown.
func (g *Graph) Upstream(v string) []string {
	i, ok := g.index[v]
	if !ok {
		return nil
	}
	return g.namesOf(g.up[i])
}

// Downstream returns the direct successors of v in the order the edges were
// added. Nil when v is unknown.
func (g *Graph) Downstream(v string) []string {
	i, ok := g.index[v]
	if !ok {
		return nil
	}
	return g.namesOf(g.down[i])
}

// Ancestors returns every vertex from which one of vs can be reached, vs
// themselves excluded unless reachable from another, in insertion order.
// Unknown vertices are ignored.
func (g *Graph) Ancestors(vs ...string) []string {
	return g.reach(g.up, vs)
}

// Descendants returns every vertex reachable from one of vs, vs themselves
// excluded unless reachable from another, in insertion order. Unknown
// vertices are ignored.
func (g *Graph) Descendants(vs ...string) []string {
	return g.reach(g.down, vs)
}

func (g *Graph) reach(adj [][]int, vs []string) []string {
	seen := make([]bool, len(g.names))
	var stack []int
	for _, v := range vs {
		if i, ok := g.index[v]; ok {
			stack = append(stack, i)
		}
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range adj[i] {
			if !seen[j] {
				seen[j] = true
				stack = append(stack, j)
			}
		}
	}
	var out []string
	for i, ok := range seen {
		if ok {
			out = append(out, g.names[i])
		}
	}
	return out
}

func (g *Graph) namesOf(ix []int) []string {
	out := make([]string, len(ix))
	for k, i := range ix {
		out[k] = g.names[i]
	}
	return out
}

// TopoSort returns the vertices so that every edge points forward. Among
// vertices whose predecessors are all placed, the one added first is placed
// first, which makes the order independent of edge insertion order and equal
// to the insertion order whenever that is already topological. A graph with a
// cycle returns a *CycleError.
func (g *Graph) TopoSort() ([]string, error) {
	n := len(g.names)
	indeg := make([]int, n)
	for i := range n {
		indeg[i] = len(g.up[i])
	}
	ready := make(intHeap, 0, n)
	for i := range n {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	// Already sorted ascending, which is a valid heap.
	out := make([]string, 0, n)
	for len(ready) > 0 {
		i := heap.Pop(&ready).(int)
		out = append(out, g.names[i])
		for _, j := range g.down[i] {
			indeg[j]--
			if indeg[j] == 0 {
				heap.Push(&ready, j)
			}
		}
	}
	if len(out) != n {
		return nil, &CycleError{Cycles: g.Cycles()}
	}
	return out, nil
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(a, b int) bool { return h[a] < h[b] }
func (h intHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
