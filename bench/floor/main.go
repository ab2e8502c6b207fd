// Command floor is the cost floor for bench/dag.sh: the cheapest honest Go
// runner of bench/gendag's DAG. It execs for every step exactly the process
// make execs for the recipe (`/bin/bash -c 'true && true'`, read from
// dag.txt), with the same concurrency, a step starting once all its needs have
// finished, stdout and stderr inherited, and nothing else: no state, no logs,
// no events. What gpipe costs above this runner is what gpipe itself adds; what
// this runner costs above make is the price of forking from a Go process (a
// bigger address space to copy page tables for, the runtime's threads), which
// no Go runner avoids. A failing step stops it starting others, and it exits 1
// once the running ones are done, as make does without -k.
//
//	floor [-j N] [-cpu] dag.txt
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

func main() {
	jobs := flag.Int("j", 2, "steps run at once")
	cpu := flag.Bool("cpu", false, "print this process's own CPU per step (getrusage RUSAGE_SELF, children excluded) to stderr")
	flag.Parse()
	if flag.NArg() != 1 || *jobs < 1 {
		fmt.Fprintln(os.Stderr, "usage: floor [-j N] [-cpu] dag.txt")
		os.Exit(2)
	}
	text, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	d, err := parse(string(text))
	if err != nil {
		fmt.Fprintf(os.Stderr, "floor: %s: %v\n", flag.Arg(0), err)
		os.Exit(2)
	}
	argv := []string{d.shell, "-c", d.run}
	attr := &os.ProcAttr{Env: os.Environ(), Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	err = schedule(d, *jobs, func(i int) error {
		return execStep(d.shell, argv, attr)
	})
	if *cpu {
		reportCPU(len(d.ids))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// execStep is one step: fork/exec and wait, through os.StartProcess rather
// than os/exec, which adds a context, a lookup and goroutines that this
// runner has no use for.
func execStep(path string, argv []string, attr *os.ProcAttr) error {
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return err
	}
	st, err := p.Wait()
	if err != nil {
		return err
	}
	if !st.Success() {
		return fmt.Errorf("%s", st)
	}
	return nil
}

// schedule runs every step of d through run, at most jobs at once, each once
// all its needs have succeeded. It uses jobs worker goroutines fed by one
// channel; the worker that finishes a step counts down its dependents' open
// needs and queues those that reach zero, so no goroutine hop sits between a
// step ending and its dependent starting. After a failure no step starts, and
// schedule returns the first error once the running steps are done.
func schedule(d *dag, jobs int, run func(i int) error) error {
	n := len(d.ids)
	open := make([]atomic.Int32, n)
	// The buffer holds every step, so queueing never blocks a worker.
	ready := make(chan int, n)
	for i, ns := range d.needs {
		open[i].Store(int32(len(ns)))
		if len(ns) == 0 {
			ready <- i
		}
	}
	var (
		quit     = make(chan struct{})
		stop     sync.Once
		firstErr error
		failed   atomic.Bool
		finished atomic.Int32
		wg       sync.WaitGroup
	)
	for range jobs {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				case i := <-ready:
					if failed.Load() {
						return
					}
					if err := run(i); err != nil {
						stop.Do(func() {
							firstErr = fmt.Errorf("step %s: %w", d.ids[i], err)
							failed.Store(true)
							close(quit)
						})
						return
					}
					for _, c := range d.dependents[i] {
						if open[c].Add(-1) == 0 {
							ready <- c
						}
					}
					if finished.Add(1) == int32(n) {
						stop.Do(func() { close(quit) })
					}
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// reportCPU prints user+sys time of this process alone (its children's is in
// RUSAGE_CHILDREN), per step, so it compares with what make or gpipe spend of
// their own on a step.
func reportCPU(steps int) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "floor: getrusage:", err)
		return
	}
	us := func(t syscall.Timeval) float64 { return float64(t.Sec)*1e6 + float64(t.Usec) }
	fmt.Fprintf(os.Stderr, "floor: own CPU %.0f µs/step (user %.0f, sys %.0f) over %d steps\n",
		(us(ru.Utime)+us(ru.Stime))/float64(steps), us(ru.Utime)/float64(steps), us(ru.Stime)/float64(steps), steps)
}
