package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A runner killed with SIGKILL cannot stop its steps' process groups: they
// have process groups of their own, so they outlive it and may still be
// writing a step's files when a resume runs that step again. Two things let
// the next attempt find them:
//
//   - the attempt's token (Script.Token), whose runner part is durable in the
//     run state before the script starts, is in the environment of every
//     process of the attempt (children inherit it); the next attempt gets the
//     token prefixes of all earlier ones (Script.Leftovers) and stops every
//     process of this user whose token has one. This alone closes the window
//     between a process starting and anything about it becoming durable.
//   - where the group is, noted best effort as resume data of the step once it
//     started; the next attempt kills that group if it is provably the same
//     one, which also catches members that cleared their environment.

const (
	// resumeKeyPgroup is the resume key under which Local notes a step's
	// process group.
	resumeKeyPgroup = "local_pgroup"
	// tokenEnv marks every process of a step's attempt (children inherit
	// it) with the attempt's token.
	tokenEnv = "GPIPE_ATTEMPT_TOKEN"
	// legacyTokenEnv is what gpipe before attempt tokens put there; a
	// group it noted is recognised by it.
	legacyTokenEnv = "GPIPE_PGROUP_TOKEN"
	// leftoverWait bounds the wait for killed leftovers to be gone.
	leftoverWait = 5 * time.Second
)

// pgroupRecord says where a step's process group ran. A pid alone is not
// enough: by the time a resume reads it, the number may belong to another
// process, on another machine, or after a reboot.
type pgroupRecord struct {
	Host  string // os.Hostname()
	Boot  string // the start of /proc/sys/kernel/random/boot_id: pids and start times restart with a boot
	Pgid  int    // the group leader's pid
	Start uint64 // the leader's start time in clock ticks after boot (/proc/<pid>/stat field 22)
	Token string // the group's tokenEnv value
}

// String is the resume value: host:boot:pgid:start:token. Host names have no
// colons; parsing still takes the fixed fields from the right.
func (r pgroupRecord) String() string {
	return r.Host + ":" + r.Boot + ":" + strconv.Itoa(r.Pgid) + ":" + strconv.FormatUint(r.Start, 10) + ":" + r.Token
}

func parsePgroupRecord(s string) (pgroupRecord, error) {
	f := strings.Split(s, ":")
	if len(f) < 5 {
		return pgroupRecord{}, fmt.Errorf("process group record %q: want host:boot:pgid:start:token", s)
	}
	n := len(f)
	pgid, err := strconv.Atoi(f[n-3])
	if err != nil || pgid <= 1 {
		return pgroupRecord{}, fmt.Errorf("process group record %q: bad pgid", s)
	}
	start, err := strconv.ParseUint(f[n-2], 10, 64)
	if err != nil {
		return pgroupRecord{}, fmt.Errorf("process group record %q: bad start time: %w", s, err)
	}
	return pgroupRecord{Host: strings.Join(f[:n-4], ":"), Boot: f[n-4], Pgid: pgid, Start: start, Token: f[n-1]}, nil
}

// machine identifies this host and boot; ok is false where there is no /proc,
// and then Local notes nothing.
type machine struct {
	host, boot string
	ok         bool
}

func (l *Local) machine() machine {
	l.machineOnce.Do(func() {
		host, err := os.Hostname()
		if err != nil {
			return
		}
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err != nil {
			return
		}
		boot := strings.TrimSpace(string(b))
		boot = strings.ReplaceAll(boot[:min(len(boot), 13)], "-", "")
		l.mach = machine{host: host, boot: boot, ok: boot != ""}
	})
	return l.mach
}

// newToken returns a value for tokenEnv. It only has to differ between
// groups, not be secret: it is compared, never trusted for anything else.
func newToken() string {
	return strconv.FormatUint(rand.Uint64(), 36)
}

// noteGroup records the group just started; best effort: without /proc or
// with the note lost to a runner that died before saving it, a resume finds
// nothing to stop.
func (l *Local) noteGroup(s Script, pgid int, token string) {
	m := l.machine()
	if s.NoteResume == nil || !m.ok {
		return
	}
	st, err := readProcStat(pgid)
	if err != nil {
		return
	}
	s.NoteResume(resumeKeyPgroup, pgroupRecord{Host: m.host, Boot: m.boot, Pgid: pgid, Start: st.start, Token: token}.String())
}

// stopLeftovers stops what earlier attempts of the step may have left
// running, and returns once it is gone: every process of this user whose
// token starts with one of tokens (with its process group, when the group's
// leader is such a process too or has exited), and the process group a previous
// runner noted in resume if it is provably that group (see ours). Zombies
// count as gone: they can no longer write. When something outlives
// leftoverWait after SIGKILL (a process stuck in the kernel), it returns an
// error rather than let the step start beside it.
func (l *Local) stopLeftovers(ctx context.Context, log io.Writer, resume map[string]string, tokens []string, token string) error {
	group := l.notedGroup(log, resume)
	var want []string
	for _, t := range l.mayRun(tokens, token) {
		want = append(want, tokenEnv+"="+t)
	}
	if group == 0 && len(want) == 0 {
		return nil
	}
	own := syscall.Getpgrp()
	var stopped []int
	seen := map[int]bool{}
	deadline := time.Now().Add(leftoverWait)
	for first := true; ; first = false {
		live := findLeftovers(group, want)
		if first && group != 0 {
			// Once, after listing its members for the log: a group
			// signal reaches every member, also one forked meanwhile, and
			// a second one could hit a new group that reused the number.
			if err := syscall.Kill(-group, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("stop processes left by a previous runner (process group %d): %w", group, err)
			}
		}
		if len(live) == 0 {
			break
		}
		pids := make([]int, len(live))
		for i, p := range live {
			pids[i] = p.pid
			if !seen[p.pid] {
				seen[p.pid] = true
				stopped = append(stopped, p.pid)
			}
			if p.killGroup && p.pgrp != own {
				_ = syscall.Kill(-p.pgrp, syscall.SIGKILL)
			}
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes left by an earlier attempt of this step still run %v after SIGKILL (pids %s); not starting it beside them", leftoverWait, formatPids(pids))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(stopped) > 0 {
		how := ""
		if group != 0 {
			how = fmt.Sprintf(" (process group %d)", group)
		}
		fmt.Fprintf(log, "gpipe: stopped processes left by an earlier attempt of this step: pids %s%s\n", formatPids(stopped), how)
	}
	return nil
}

// mayRun returns those of the token prefixes that processes may carry now,
// sparing a step the scan of every process of the user (milliseconds) when
// none can. token is the current attempt's, RUNNER/STEP/N.
//
// A prefix of this runner (its RUNNER part) can only be carried by a
// process this executor started for an earlier attempt. A prefix of another
// runner can only be carried by a process that carried it when this executor
// first looked (the snapshot): that runner is dead, since this one holds the
// run's lease, so it starts nothing any more, and what its processes start
// inherits their token.
func (l *Local) mayRun(prefixes []string, token string) []string {
	own := ""
	if i := strings.IndexByte(token, '/'); i > 0 {
		own = token[:i+1]
	}
	l.leftMu.Lock()
	defer l.leftMu.Unlock()
	var out []string
	for _, p := range prefixes {
		switch {
		case p == "":
		case own != "" && strings.HasPrefix(p, own):
			if l.started[p] {
				out = append(out, p)
			}
		default:
			if l.snapshot == nil {
				l.snapshot = attemptTokens()
			}
			for t := range l.snapshot {
				if strings.HasPrefix(t, p) {
					out = append(out, p)
					break
				}
			}
		}
	}
	return out
}

// noteStarted records that this executor started processes with token, so
// that a later attempt of the step looks for them.
func (l *Local) noteStarted(token string) {
	i := strings.LastIndexByte(token, '/')
	if i < 0 {
		return
	}
	l.leftMu.Lock()
	defer l.leftMu.Unlock()
	if l.started == nil {
		l.started = map[string]bool{}
	}
	l.started[token[:i+1]] = true
}

// notedGroup returns the process group noted in resume when it is still
// there and provably the one noted, else 0.
func (l *Local) notedGroup(log io.Writer, resume map[string]string) int {
	v := resume[resumeKeyPgroup]
	if v == "" {
		return 0
	}
	rec, err := parsePgroupRecord(v)
	if err != nil {
		fmt.Fprintf(log, "gpipe: ignoring resume data: %v\n", err)
		return 0
	}
	m := l.machine()
	if !m.ok || rec.Host != m.host || rec.Boot != m.boot {
		return 0 // not started on this machine since its boot: nothing of it runs here
	}
	if !l.ours(rec) {
		return 0
	}
	return rec.Pgid
}

// ours reports whether the live group rec.Pgid is the one rec describes.
func (l *Local) ours(rec pgroupRecord) bool {
	st, err := readProcStat(rec.Pgid)
	if err == nil {
		// The leader (perhaps a zombie) still holds the pid: it is ours
		// exactly when it started when ours did.
		return st.start == rec.Start
	}
	if rec.Token == "" {
		return false
	}
	want := func(kv string) bool { return kv == tokenEnv+"="+rec.Token || kv == legacyTokenEnv+"="+rec.Token }
	for _, pid := range liveMembers(rec.Pgid) {
		if hasEnv(pid, want) {
			return true
		}
	}
	return false
}
