package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline/report"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/steps/aws"
)

func (a *App) setupLogs(fs *flag.FlagSet) handler {
	stateURL := stateFlag(fs)
	follow := fs.Bool("follow", false, "keep printing new output until the run stops")
	interval := fs.Duration("interval", time.Second, "how often --follow polls the store")
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 1, 2); err != nil {
			return err
		}
		st, url, err := a.openStore(ctx, *stateURL, "")
		if err != nil {
			return err
		}
		runID, err := resolveRunID(ctx, st, url, args[0])
		if err != nil {
			return err
		}
		f := &logFollower{store: st, runID: runID, out: a.Stdout, offsets: map[string]int64{}}
		for {
			run, err := state.Read(ctx, st, runID)
			if err != nil {
				return runReadError(runID, url, err)
			}
			if len(args) == 2 && f.steps == nil {
				// A matrix step's spec id shows all its copies, each line
				// prefixed with the copy's id.
				ids, err := a.resolveStepIDs(ctx, st, run, args[1])
				if err != nil {
					return err
				}
				f.steps = newStepFilter(ids)
			}
			if err := f.poll(ctx, run); err != nil {
				return err
			}
			if !*follow || finished(run) {
				return f.flushPartial()
			}
			if ab := report.Abandonment(run, url, time.Now(), aws.Resources{}); ab != nil {
				f.flushPartial()
				fmt.Fprintf(a.Stderr, "gpipe: run %s is abandoned: %s; %s\n", runID, ab.Line(), strings.ReplaceAll(ab.Todo(), "`", ""))
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*interval):
			}
		}
	}
}

// finished reports whether nobody drives the run any more.
func finished(r *state.Run) bool {
	return r.Status != state.RunRunning && r.Status != state.RunPending
}

// logFollower prints logs incrementally: whole lines with the step id in
// front (the attempt too when a step ran more than once).
type logFollower struct {
	store   state.Store
	runID   string
	steps   stepFilter // nil: all
	out     io.Writer
	offsets map[string]int64
	partial map[string][]byte
}

func (f *logFollower) poll(ctx context.Context, run *state.Run) error {
	for _, id := range run.Order {
		if !f.steps.has(id) {
			continue
		}
		s := run.Steps[id]
		if s == nil {
			continue
		}
		for _, at := range s.Attempts {
			if at.Log == "" {
				continue
			}
			data, err := f.store.ReadLog(ctx, f.runID, at.Log, f.offsets[at.Log])
			if errors.Is(err, state.ErrNotFound) {
				continue // the attempt has printed nothing yet
			}
			if err != nil {
				return fmt.Errorf("read log %s of run %s: %w", at.Log, f.runID, err)
			}
			f.offsets[at.Log] += int64(len(data))
			prefix := id
			if len(s.Attempts) > 1 {
				prefix = fmt.Sprintf("%s#%d", id, at.N)
			}
			f.write(at.Log, prefix, data)
		}
	}
	return nil
}

func (f *logFollower) write(name, prefix string, data []byte) {
	if f.partial == nil {
		f.partial = map[string][]byte{}
	}
	buf := append(f.partial[name+"\x00"+prefix], data...)
	sc := bufio.NewScanner(bytes.NewReader(buf))
	sc.Buffer(nil, len(buf)+1)
	consumed := 0
	for sc.Scan() {
		line := sc.Bytes()
		end := consumed + len(line)
		if end >= len(buf) || buf[end] != '\n' {
			break
		}
		fmt.Fprintf(f.out, "[%s] %s\n", prefix, line)
		consumed = end + 1
	}
	f.partial[name+"\x00"+prefix] = append([]byte(nil), buf[consumed:]...)
}

func (f *logFollower) flushPartial() error {
	for key, rest := range f.partial {
		if len(rest) > 0 {
			_, prefix, _ := bytes.Cut([]byte(key), []byte{0})
			fmt.Fprintf(f.out, "[%s] %s\n", prefix, rest)
		}
	}
	return nil
}
