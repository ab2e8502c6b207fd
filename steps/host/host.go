// Package host runs rendered bash scripts where a step says: on this machine
// (Local) or on an EC2 instance through SSM Run Command (steps/aws). A host step
// type renders its script and hands it to an Executor chosen by address.
package host

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gpipe/gpipe/pipeline"
)

// Script is one script to run on a host.
type Script struct {
	StepID string
	Body   string            // a bash script; it should begin with set -euo pipefail
	Env    map[string]string // added to the host's environment
	Log    io.Writer         // stdout and stderr go here
	// Timeout bounds the whole script; 0 means none. Remote hosts also pass it
	// to the remote side (SSM executionTimeout).
	Timeout time.Duration
	// Resume and SaveResume let a remote host reattach to a command that is
	// still running after the runner died (see pipeline.StepRun).
	Resume     map[string]string
	SaveResume func(ctx context.Context, key, value string) error
	// NoteResume is the non-blocking, best-effort SaveResume (see
	// pipeline.StepRun.NoteResume); nil records nothing.
	NoteResume func(key, value string)
	// Previous is pipeline.StepRun.Previous: resume data of an earlier
	// runner's attempt, for stopping what it left running.
	Previous map[string]string
	// Token and Leftovers are pipeline.StepRun's: this attempt's token, and
	// the token prefixes of earlier attempts whose processes must be gone
	// before it starts.
	Token     string
	Leftovers []string
}

// Executor runs scripts on one kind of host. Exec returns the key=value pairs
// the script wrote to $GPIPE_OUTPUT. A script that exits non-zero returns a
// *pipeline.ExitError.
type Executor interface {
	Exec(ctx context.Context, s Script) (map[string]string, error)
}

// ParseOutputs reads GPIPE_OUTPUT content: key=value lines, and multi-line
// values written as GitHub Actions does (key<<DELIM ... DELIM).
func ParseOutputs(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if k, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(k, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("output %q: missing closing delimiter %q", k, delim)
			}
			out[k] = strings.Join(val, "\n")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("output line %q: want key=value", line)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read outputs: %w", err)
	}
	return out, nil
}

// ScriptFor is the Script that runs body for one attempt of a step: the
// step's env, log, timeout and resume data go with it.
func ScriptFor(sr *pipeline.StepRun, body string) Script {
	return Script{
		StepID:     sr.StepID,
		Body:       body,
		Env:        sr.Env,
		Log:        sr.Log,
		Timeout:    sr.Timeout,
		Resume:     sr.Resume,
		SaveResume: sr.SaveResume,
		NoteResume: sr.NoteResume,
		Previous:   sr.Previous,
		Token:      sr.Token,
		Leftovers:  sr.Leftovers,
	}
}
