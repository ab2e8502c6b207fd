package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gpipe/gpipe/pipeline"
)

// Local runs scripts on this machine with bash, each in a process group of its
// own so that cancelling a step also stops everything the script started.
type Local struct {
	// BaseEnv is the environment scripts start from; nil means os.Environ().
	BaseEnv []string
	// Grace is how long a cancelled script gets between SIGTERM and SIGKILL.
	Grace time.Duration
	// Hard, when closed, cuts the grace short: a cancelled script's process
	// group gets SIGKILL at once (a second Ctrl-C). Nil: never.
	Hard <-chan struct{}
	// TempDir is where output files go; "" means os.TempDir().
	TempDir string

	dirOnce sync.Once
	dir     string
	dirLock *os.File // flocked while the runner lives (see workDir)
	dirErr  error

	machineOnce sync.Once
	mach        machine

	outputs atomic.Uint64 // numbers the steps' output files
	// copyBufs holds the buffers that copy scripts' output to their logs:
	// io.Copy allocates 32 KiB per step, most of a short step's garbage.
	copyBufs sync.Pool

	bashOnce sync.Once
	bashPath string
	bashErr  error

	// The script's stdin, opened once: every child gets a copy as fd 0.
	nullOnce sync.Once
	nullFD   int
	nullErr  error

	// The base environment, without repeated names, and its names: taken
	// once, so that a step only copies it (see env).
	envOnce  sync.Once
	envBase  []string
	envNames map[string]bool

	leftMu   sync.Mutex
	snapshot map[string]bool // attempt tokens of the user's processes when first needed (see mayRun)
	started  map[string]bool // RUNNER/STEP/ prefixes of the tokens of processes this executor started
}

// bash is bash's path, looked up in $PATH once: exec.Command("bash") stats
// every $PATH entry on every step.
func (l *Local) bash() (string, error) {
	l.bashOnce.Do(func() { l.bashPath, l.bashErr = exec.LookPath("bash") })
	return l.bashPath, l.bashErr
}

// Exec runs s.Body with bash and returns what it wrote to $GPIPE_OUTPUT.
//
// The script reaches bash as fd 3 (bash reads /dev/fd/3), a memfd on Linux
// and a pipe elsewhere. Nothing is created on disk but the output file, by
// the script when it writes one, in one directory per executor: creating and
// deleting three files and a directory per step was most of a short step's
// cost on ext4.
//
// Every process of the script carries s.Token in its environment
// (GPIPE_ATTEMPT_TOKEN). Before it starts, Exec stops what earlier attempts
// left running: processes whose token starts with one of s.Leftovers, and the
// process group noted in s.Previous or s.Resume; with s.NoteResume set, Exec
// notes where the script's process group runs (see stopLeftovers).
func (l *Local) Exec(ctx context.Context, s Script) (map[string]string, error) {
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	// Previous covers a step that reruns (--from, an edit) rather than
	// reattaches; Resume is the same data when it reattaches.
	leftover := s.Previous
	if leftover == nil {
		leftover = s.Resume
	}
	if err := l.stopLeftovers(ctx, log, leftover, s.Leftovers, s.Token); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	token := s.Token
	if token == "" && s.NoteResume != nil {
		token = newToken()
	}
	dir, err := l.workDir()
	if err != nil {
		return nil, err
	}
	// The output file is created by the script's first write to it: most
	// steps write none, and creating and deleting a file per step cost
	// about a tenth of a short step's CPU on ext4. The directory is this
	// executor's alone and the number is never reused, so nobody else
	// creates the name.
	outputPath := filepath.Join(dir, "outputs-"+strconv.FormatUint(l.outputs.Add(1), 10))

	script, err := scriptFD(s.Body)
	if err != nil {
		return nil, fmt.Errorf("pass the script to bash: %w", err)
	}
	// The log is a pipe that this goroutine reads: a file as the script's
	// stdout and stderr, and no copy goroutine that would wait for every
	// background child to close its end.
	pr, pw, err := logPipe()
	if err != nil {
		syscall.Close(script)
		return nil, fmt.Errorf("make log pipe: %w", err)
	}
	defer pr.Close()
	bash, err := l.bash()
	if err != nil {
		syscall.Close(script)
		syscall.Close(pw)
		return nil, fmt.Errorf("start bash: %w", err)
	}
	devNull, err := l.devNull()
	if err != nil {
		syscall.Close(script)
		syscall.Close(pw)
		return nil, fmt.Errorf("start bash: %w", err)
	}
	l.noteStarted(token)
	// argv[0] is bash's full path: given a bare "bash", bash searches $PATH
	// for itself to set $BASH, a stat per $PATH entry on every step.
	c, err := startChild(bash, []string{bash, "--noprofile", "--norc", "/dev/fd/3"}, l.env(s.Env, outputPath, token), devNull, pw, script)
	syscall.Close(pw)
	syscall.Close(script)
	if err != nil {
		return nil, fmt.Errorf("start bash: %w", err)
	}
	w := newScriptWait(l, s, c, token, pr)
	stopCancel := context.AfterFunc(ctx, func() { l.stopGroup(c.pid, w.exited) })
	w.timer = time.AfterFunc(noteGroupAfter, w.longRunning)
	copyErr := w.copyOutput(log)
	w.awaitExit()
	stopCancel()
	// The script is done; whatever it left running in the background would
	// otherwise outlive the step. Until reaped, the exited leader keeps the
	// group's number from being reused.
	_ = syscall.Kill(-c.pid, syscall.SIGKILL)
	ws, waitErr := c.reap()
	outputs, outErr := takeOutputs(outputPath)
	if copyErr != nil {
		return nil, fmt.Errorf("copy step output: %w", copyErr)
	}

	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if waitErr != nil {
		return nil, fmt.Errorf("run bash: %w", waitErr)
	}
	switch {
	case ws.Signaled():
		return nil, &pipeline.ExitError{Code: 128 + int(ws.Signal())}
	case ws.ExitStatus() != 0:
		return nil, &pipeline.ExitError{Code: ws.ExitStatus()}
	}
	if outErr != nil {
		return nil, fmt.Errorf("read outputs: %w", outErr)
	}
	return outputs, nil
}

// takeOutputs reads and removes the file a script wrote its outputs to. Most
// scripts write none: one failed open then, no unlink.
func takeOutputs(path string) (map[string]string, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	// Unlink, not os.Remove, which tries rmdir too; the open file stays
	// readable.
	uerr := syscall.Unlink(path)
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	out, err := ParseOutputs(f)
	if err == nil && uerr != nil {
		err = &os.PathError{Op: "remove", Path: path, Err: uerr}
	}
	return out, err
}

// devNull is a descriptor of /dev/null, a raw one (without the poller
// registration and mode changes of os.Open), opened on first use and closed
// by Close.
func (l *Local) devNull() (int, error) {
	l.nullOnce.Do(func() {
		l.nullFD, l.nullErr = syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if l.nullErr != nil {
			l.nullErr = &os.PathError{Op: "open", Path: os.DevNull, Err: l.nullErr}
		}
	})
	return l.nullFD, l.nullErr
}

// stopGroup runs when a step is cancelled: it sends SIGTERM to the script's
// process group, and SIGKILL after the grace period or once l.Hard is
// closed, unless the script exits first.
func (l *Local) stopGroup(pgid int, exited <-chan struct{}) {
	select {
	case <-l.Hard:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := l.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	case <-l.Hard:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// env is the script's environment: the base, the step's variables, the
// attempt's token and $GPIPE_OUTPUT, a later entry of a name replacing an
// earlier one in its place (as exec.Cmd does).
// The base is taken once, on the first step (os.Environ() when BaseEnv is
// nil): deduplicating it per step was a tenth of a short step's cost here.
func (l *Local) env(extra map[string]string, outputPath, token string) []string {
	l.envOnce.Do(func() {
		base := l.BaseEnv
		if base == nil {
			base = os.Environ()
		}
		l.envBase = dedupEnv(base)
		l.envNames = make(map[string]bool, len(l.envBase))
		for _, kv := range l.envBase {
			if k, _, ok := strings.Cut(kv, "="); ok {
				l.envNames[k] = true
			}
		}
	})
	env := make([]string, len(l.envBase), len(l.envBase)+len(extra)+2)
	copy(env, l.envBase)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Only a name given twice needs the deduplication.
	twice := l.envNames["GPIPE_OUTPUT"] || token != "" && l.envNames[tokenEnv]
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
		twice = twice || l.envNames[k] || k == "GPIPE_OUTPUT" || token != "" && k == tokenEnv
	}
	if token != "" {
		env = append(env, tokenEnv+"="+token)
	}
	env = append(env, "GPIPE_OUTPUT="+outputPath)
	if twice {
		return dedupEnv(env)
	}
	return env
}

// dedupEnv keeps the last entry of each name, where the last one was.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, len(env))
	n := len(out)
	for i := len(env) - 1; i >= 0; i-- {
		kv := env[i]
		i := strings.IndexByte(kv, '=')
		if i == 0 { // "=C:=..." names on Windows, as exec.Cmd reads them
			i = strings.IndexByte(kv[1:], '=') + 1
		}
		if i <= 0 {
			if kv != "" { // not name=value: kept as it is, as exec.Cmd does
				n--
				out[n] = kv
			}
			continue
		}
		k := kv[:i]
		if seen[k] {
			continue
		}
		seen[k] = true
		n--
		out[n] = kv
	}
	return out[n:]
}
