package dag

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func build(edges ...[2]string) *Graph {
	g := New()
	for _, e := range edges {
		if e[1] == "" {
			g.Add(e[0])
			continue
		}
		g.Connect(e[0], e[1])
	}
	return g
}

func TestTopoSort(t *testing.T) {
	tests := []struct {
		name  string
		verts []string // added first, in this order
		edges [][2]string
		want  []string
	}{
		{name: "empty", want: []string{}},
		{name: "insertion order kept when already topological",
			verts: []string{"a", "b", "c", "d"},
			edges: [][2]string{{"a", "c"}, {"b", "c"}, {"c", "d"}},
			want:  []string{"a", "b", "c", "d"}},
		{name: "dependency written later moves up",
			verts: []string{"train", "fetch", "provision"},
			edges: [][2]string{{"fetch", "train"}, {"provision", "fetch"}},
			want:  []string{"provision", "fetch", "train"}},
		{name: "ready vertex with smaller index goes first",
			verts: []string{"x", "a", "b", "y"},
			edges: [][2]string{{"a", "b"}, {"y", "x"}},
			want:  []string{"a", "b", "y", "x"}},
		{name: "duplicate edges ignored",
			verts: []string{"a", "b"},
			edges: [][2]string{{"a", "b"}, {"a", "b"}},
			want:  []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New()
			for _, v := range tt.verts {
				g.Add(v)
			}
			for _, e := range tt.edges {
				g.Connect(e[0], e[1])
			}
			got, err := g.TopoSort()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("TopoSort = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTopoSortIndependentOfEdgeOrder(t *testing.T) {
	edges := [][2]string{{"a", "d"}, {"b", "d"}, {"c", "e"}, {"d", "e"}, {"a", "c"}}
	var first []string
	for perm := range 5 {
		g := New()
		for _, v := range []string{"a", "b", "c", "d", "e"} {
			g.Add(v)
		}
		for k := range edges {
			e := edges[(k+perm)%len(edges)]
			g.Connect(e[0], e[1])
		}
		got, err := g.TopoSort()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
		} else if !slices.Equal(got, first) {
			t.Errorf("edge order %d: %v, want %v", perm, got, first)
		}
	}
}

func TestCycleError(t *testing.T) {
	tests := []struct {
		name  string
		edges [][2]string
		want  string
	}{
		{name: "self loop", edges: [][2]string{{"a", "a"}}, want: "cycle: a -> a"},
		{name: "two", edges: [][2]string{{"b", "a"}, {"a", "b"}}, want: "cycle: a -> b -> a"},
		{name: "starts at smallest vertex",
			edges: [][2]string{{"z", "m"}, {"m", "b"}, {"b", "z"}, {"start", "z"}},
			want:  "cycle: b -> z -> m -> b"},
		{name: "shortest cycle through smallest vertex",
			edges: [][2]string{{"a", "x"}, {"x", "y"}, {"y", "z"}, {"z", "a"}, {"x", "a"}},
			want:  "cycle: a -> x -> a"},
		{name: "two components sorted",
			edges: [][2]string{{"q", "p"}, {"p", "q"}, {"d", "c"}, {"c", "d"}, {"c", "q"}},
			want:  "cycles: c -> d -> c; p -> q -> p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The message must not depend on the order edges were added in.
			for rot := range tt.edges {
				g := New()
				for k := range tt.edges {
					e := tt.edges[(k+rot)%len(tt.edges)]
					g.Connect(e[0], e[1])
				}
				_, err := g.TopoSort()
				var ce *CycleError
				if !errors.As(err, &ce) {
					t.Fatalf("rotation %d: err = %v, want *CycleError", rot, err)
				}
				if err.Error() != tt.want {
					t.Errorf("rotation %d: %q, want %q", rot, err, tt.want)
				}
			}
		})
	}
}

func TestAcyclicHasNoCycles(t *testing.T) {
	g := build([2]string{"a", "b"}, [2]string{"b", "c"}, [2]string{"a", "c"})
	if c := g.Cycles(); c != nil {
		t.Errorf("Cycles = %v, want nil", c)
	}
}

func TestAncestorsDescendants(t *testing.T) {
	//   a → b → d → e
	//   c ↗      f
	g := build([2]string{"a", "b"}, [2]string{"c", "b"}, [2]string{"b", "d"}, [2]string{"d", "e"}, [2]string{"f", ""})
	tests := []struct {
		fn   func(...string) []string
		name string
		in   []string
		want []string
	}{
		{g.Ancestors, "ancestors of d", []string{"d"}, []string{"a", "b", "c"}},
		{g.Ancestors, "ancestors of root", []string{"a"}, nil},
		{g.Descendants, "descendants of a", []string{"a"}, []string{"b", "d", "e"}},
		{g.Descendants, "descendants of a and f", []string{"a", "f"}, []string{"b", "d", "e"}},
		{g.Descendants, "descendants of b and d", []string{"b", "d"}, []string{"d", "e"}},
		{g.Descendants, "unknown vertex", []string{"nope"}, nil},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in...); !slices.Equal(got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := g.Upstream("b"); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("Upstream(b) = %v", got)
	}
	if got := g.Downstream("b"); !slices.Equal(got, []string{"d"}) {
		t.Errorf("Downstream(b) = %v", got)
	}
	if g.Len() != 6 || !g.Has("f") || g.Has("zz") || !g.HasEdge("a", "b") || g.HasEdge("b", "a") {
		t.Error("Len/Has/HasEdge disagree with the graph")
	}
}

func TestLargeChainNoDeepRecursion(t *testing.T) {
	g := New()
	const n = 20000
	for i := 1; i < n; i++ {
		g.Connect(fmt.Sprint("v", i-1), fmt.Sprint("v", i))
	}
	order, err := g.TopoSort()
	if err != nil || len(order) != n || order[0] != "v0" || order[n-1] != fmt.Sprint("v", n-1) {
		t.Fatalf("chain: len %d err %v", len(order), err)
	}
	g.Connect(fmt.Sprint("v", n-1), "v0")
	_, err = g.TopoSort()
	var ce *CycleError
	if !errors.As(err, &ce) || len(ce.Cycles) != 1 || len(ce.Cycles[0]) != n+1 {
		t.Fatalf("want one cycle of the whole chain, got %v", err != nil)
	}
}
