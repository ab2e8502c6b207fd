// Command gendag writes one random layered DAG of shell steps that run `true`
// in one bash process each (the same work for every tool), four times over: as
// a gpipe spec, as a Makefile, as a Taskfile and as a plain dag.txt for
// bench/floor, so the benchmark in bench/dag.sh can run the same graph with
// each tool.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	steps := flag.Int("steps", 800, "number of steps")
	layers := flag.Int("layers", 20, "number of layers")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("out", ".", "directory to write spec.yaml, Makefile, Taskfile.yml and dag.txt to")
	flag.Parse()
	if *steps < 1 || *layers < 1 || *layers > *steps {
		log.Fatal("gendag: need steps >= layers >= 1")
	}
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	needs := graph(rng, *steps, *layers)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("spec.yaml", gpipeSpec(needs))
	write("Makefile", makefile(needs))
	write("Taskfile.yml", taskfile(needs))
	write("dag.txt", dagText(needs))
}

// makeShell and recipe are what make runs for every step: a recipe that is not
// a simple command goes to one `$(SHELL) -c RECIPE`. dag.txt names both, so
// bench/floor execs exactly the same process make does.
const (
	makeShell = "/bin/bash"
	recipe    = "true && true"
)

// graph spreads the steps over layers; each step after the first layer needs
// one to three steps of earlier layers, mostly the previous one.
func graph(rng *rand.Rand, n, layers int) [][]int {
	layerOf := make([]int, n)
	var byLayer [][]int
	for l := 0; l < layers; l++ {
		byLayer = append(byLayer, nil)
	}
	for i := 0; i < n; i++ {
		l := i * layers / n
		layerOf[i] = l
		byLayer[l] = append(byLayer[l], i)
	}
	needs := make([][]int, n)
	for i := 0; i < n; i++ {
		l := layerOf[i]
		if l == 0 {
			continue
		}
		seen := map[int]bool{}
		for k := 0; k < 1+rng.IntN(3); k++ {
			from := l - 1
			if rng.IntN(4) == 0 {
				from = rng.IntN(l)
			}
			cands := byLayer[from]
			d := cands[rng.IntN(len(cands))]
			if !seen[d] {
				seen[d] = true
				needs[i] = append(needs[i], d)
			}
		}
	}
	return needs
}

func name(i int) string { return fmt.Sprintf("s%04d", i) }

func gpipeSpec(needs [][]int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: dagbench\nsteps:\n")
	for i, ns := range needs {
		fmt.Fprintf(&b, "  - id: %s\n    type: shell\n    with: {run: \"true\"}\n", name(i))
		if len(ns) > 0 {
			b.WriteString("    needs: [")
			for k, d := range ns {
				if k > 0 {
					b.WriteString(", ")
				}
				b.WriteString(name(d))
			}
			b.WriteString("]\n")
		}
	}
	return b.String()
}

func makefile(needs [][]int) string {
	var b strings.Builder
	b.WriteString("SHELL := " + makeShell + "\n.PHONY: all")
	for i := range needs {
		b.WriteString(" " + name(i))
	}
	b.WriteString("\nall:")
	for i := range needs {
		b.WriteString(" " + name(i))
	}
	b.WriteString("\n")
	for i, ns := range needs {
		b.WriteString(name(i) + ":")
		for _, d := range ns {
			b.WriteString(" " + name(d))
		}
		// `true && true` is not a simple command, so make hands it to one
		// $(SHELL) -c, which runs both builtins: one bash per step, as for a
		// gpipe shell step (bash running its script's builtin).
		b.WriteString("\n\t@" + recipe + "\n")
	}
	return b.String()
}

func taskfile(needs [][]int) string {
	var b strings.Builder
	b.WriteString("version: '3'\ntasks:\n  default:\n    deps: [")
	for i := range needs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name(i))
	}
	b.WriteString("]\n")
	for i, ns := range needs {
		fmt.Fprintf(&b, "  %s:\n    run: once\n    cmds: [\"bash --noprofile --norc -c true\"]\n", name(i))
		if len(ns) > 0 {
			b.WriteString("    deps: [")
			for k, d := range ns {
				if k > 0 {
					b.WriteString(", ")
				}
				b.WriteString(name(d))
			}
			b.WriteString("]\n")
		}
	}
	return b.String()
}

// dagText is the graph for bench/floor, one line per record: "shell PATH" and
// "run SCRIPT" (the process every step execs: PATH -c SCRIPT), then
// "step ID NEED..." in an order where needs come first.
func dagText(needs [][]int) string {
	var b strings.Builder
	b.WriteString("shell " + makeShell + "\nrun " + recipe + "\n")
	for i, ns := range needs {
		b.WriteString("step " + name(i))
		for _, d := range ns {
			b.WriteString(" " + name(d))
		}
		b.WriteString("\n")
	}
	return b.String()
}
