package main

import (
	"strconv"

	"errors"
	"flag"
	"fmt"
	"github.com/gpipe/gpipe/pipeline/engine"
	"io"
	"strings"
)

// UsageError is bad usage: an unknown flag, a missing argument. Exit 2.
// Err, when set, is the cause callers may test for (state.ErrNotFound).
type UsageError struct {
	Msg  string
	Err  error
	Hint string // what to do, printed as "gpipe: hint: ..."
}

func (e *UsageError) Error() string { return e.Msg }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// command is one subcommand.
type command struct {
	name    string
	args    string // positional arguments, for help
	summary string
	flags   func(fs *flag.FlagSet)
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments, as users type them. "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &UsageError{Msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// multiFlag collects a repeatable flag (-p name=value).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func newFlagSet(name, args, summary string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gpipe "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { printHelp(fs.Output(), fs, name, args, summary) }
	return fs
}

// concurrencyFlag declares --concurrency of run and resume. Unset (0) means
// the spec's concurrency, else engine.DefaultConcurrency; 0 or a negative
// number given on the command line is bad usage (exit 2).
func concurrencyFlag(fs *flag.FlagSet) *int {
	n := new(int)
	fs.Func("concurrency", fmt.Sprintf("run at most `N` steps at once (default: the spec's concurrency, else %d)", engine.DefaultConcurrency),
		func(s string) error {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				return errors.New("want a whole number of steps, 1 or more")
			}
			*n = v
			return nil
		})
	return n
}
