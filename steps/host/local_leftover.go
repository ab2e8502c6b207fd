package host

import (
	"bytes"
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
// writing a step's files when a resume runs that step again. Local therefore
// notes, as resume data of the step, where the group is; the next attempt that
// gets that data back (the engine hands it over only on a resume of a step left
// running) kills the group first if it is provably the same one.

const (
	// resumeKeyPgroup is the resume key under which Local notes a step's
	// process group.
	resumeKeyPgroup = "local_pgroup"
	// tokenEnv marks every process of a step's group (children inherit it), so
	// that a resume can recognise survivors whose group leader already exited.
	tokenEnv = "GPIPE_PGROUP_TOKEN"
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

// procStat is what Local needs of /proc/<pid>/stat.
type procStat struct {
	state byte
	pgrp  int
	start uint64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself; the fields after the last ")" are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 { // f[0] is field 3 (state), f[19] field 22 (starttime)
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, start: start}, nil
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

// stopLeftovers kills the process group a previous runner noted in resume,
// if it is still running and is provably that group: same host and boot, and
// either its leader is alive with the noted start time, or (the leader
// exited) a member carries the group's token. A pid number stays allocated
// while any process uses it as its group id, so a live group with the noted
// pgid is either ours or, only after ours ended entirely and the number was
// reused, someone else's; the start time and the token tell them apart.
func (l *Local) stopLeftovers(ctx context.Context, log io.Writer, resume map[string]string) {
	v := resume[resumeKeyPgroup]
	if v == "" {
		return
	}
	rec, err := parsePgroupRecord(v)
	if err != nil {
		fmt.Fprintf(log, "gpipe: ignoring resume data: %v\n", err)
		return
	}
	m := l.machine()
	if !m.ok || rec.Host != m.host || rec.Boot != m.boot {
		return // not started on this machine since its boot: nothing of it runs here
	}
	if !l.ours(rec) {
		return
	}
	if err := syscall.Kill(-rec.Pgid, syscall.SIGKILL); err != nil {
		if !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(log, "gpipe: stop processes left by a previous runner (pgid %d): %v\n", rec.Pgid, err)
		}
		return
	}
	// SIGKILL is delivered asynchronously: wait until nothing of the group
	// can still write before the step starts over. Zombies count as gone; a
	// reaper that never reaps must not hold the step.
	deadline := time.Now().Add(leftoverWait)
	for len(liveMembers(rec.Pgid)) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Fprintf(log, "stopped processes left by a previous runner: pgid %d\n", rec.Pgid)
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
	for _, pid := range liveMembers(rec.Pgid) {
		if hasEnv(pid, tokenEnv+"="+rec.Token) {
			return true
		}
	}
	return false
}

// liveMembers lists the processes, zombies excluded, whose group is pgid.
func liveMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.pgrp != pgid || st.state == 'Z' || st.state == 'X' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// hasEnv reports whether pid started with kv in its environment. Processes
// of other users are unreadable, and so never taken for ours.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}
