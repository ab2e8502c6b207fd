package main

import (
	"fmt"
	"strings"
)

// dag is bench/gendag's dag.txt: the process every step execs (shell -c run)
// and the steps with their needs, by index.
type dag struct {
	shell, run string
	ids        []string
	needs      [][]int
	dependents [][]int
}

// parse reads dag.txt: "shell PATH", "run SCRIPT" and one "step ID NEED..."
// line per step. A need must be a step of an earlier line, as gendag writes
// them, which also rules out cycles.
func parse(text string) (*dag, error) {
	d := &dag{}
	index := map[string]int{}
	for n, line := range strings.Split(text, "\n") {
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "":
			continue
		case "shell":
			d.shell = rest
		case "run":
			d.run = rest
		case "step":
			f := strings.Fields(rest)
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: step without an id", n+1)
			}
			if _, dup := index[f[0]]; dup {
				return nil, fmt.Errorf("line %d: step %s again", n+1, f[0])
			}
			i := len(d.ids)
			var needs []int
			for _, need := range f[1:] {
				j, ok := index[need]
				if !ok {
					return nil, fmt.Errorf("line %d: step %s needs %s, not a step of an earlier line", n+1, f[0], need)
				}
				needs = append(needs, j)
				d.dependents[j] = append(d.dependents[j], i)
			}
			index[f[0]] = i
			d.ids = append(d.ids, f[0])
			d.needs = append(d.needs, needs)
			d.dependents = append(d.dependents, nil)
		default:
			return nil, fmt.Errorf("line %d: unknown record %q", n+1, key)
		}
	}
	switch {
	case d.shell == "" || d.run == "":
		return nil, fmt.Errorf("no shell or no run line")
	case len(d.ids) == 0:
		return nil, fmt.Errorf("no steps")
	}
	return d, nil
}
