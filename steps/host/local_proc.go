package host

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// What Local reads of /proc to find a step's processes.

// procStat is what Local needs of /proc/<pid>/stat.
type procStat struct {
	state byte
	pgrp  int
	start uint64
}

// live is false for zombies and dead processes: they hold no files and run
// no code any more.
func (st procStat) live() bool { return st.state != 'Z' && st.state != 'X' }

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

// leftoverProc is a live process found by findLeftovers.
type leftoverProc struct {
	pid, pgrp int
	killGroup bool // its whole group is a leftover
}

// findLeftovers scans /proc once for live processes that are members of
// group (when not 0), or that belong to this user and carry one of the
// environment entries that start with one of want.
func findLeftovers(group int, want []string) []leftoverProc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	uid := uint32(os.Getuid())
	match := func(kv string) bool {
		for _, w := range want {
			if strings.HasPrefix(kv, w) {
				return true
			}
		}
		return false
	}
	var found []leftoverProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || !st.live() {
			continue
		}
		if group != 0 && st.pgrp == group {
			found = append(found, leftoverProc{pid: pid, pgrp: st.pgrp})
			continue
		}
		if len(want) == 0 || !ownedBy(pid, uid) || !hasEnv(pid, match) {
			continue
		}
		found = append(found, leftoverProc{pid: pid, pgrp: st.pgrp, killGroup: groupIsLeftover(st.pgrp, pid, uid, match)})
	}
	return found
}

// groupIsLeftover says whether the group pgrp of a leftover process pid goes
// with it: when its leader is a leftover too, or gone. Only a step's own
// processes create groups in it (Local starts it as a group of its own), so
// a group whose leader is gone was made by the step; a live leader without
// the token is another group that the process joined, and only the process
// goes.
func groupIsLeftover(pgrp, pid int, uid uint32, match func(string) bool) bool {
	if pgrp == pid {
		return true
	}
	ls, err := readProcStat(pgrp)
	if err != nil || !ls.live() {
		return true
	}
	return ownedBy(pgrp, uid) && hasEnv(pgrp, match)
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
		if err != nil || st.pgrp != pgid || !st.live() {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// attemptTokens returns the tokenEnv values of this user's live processes.
func attemptTokens() map[string]bool {
	tokens := map[string]bool{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return tokens
	}
	uid := uint32(os.Getuid())
	key := []byte(tokenEnv + "=")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !ownedBy(pid, uid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, key); ok {
				tokens[string(v)] = true
			}
		}
	}
	return tokens
}

// outputDirsInUse lists the directories of the $GPIPE_OUTPUT files of this
// user's live processes: where a step, perhaps of a dead runner, may still
// write its outputs.
func outputDirsInUse(uid uint32) map[string]bool {
	dirs := map[string]bool{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return dirs
	}
	const key = "GPIPE_OUTPUT="
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !ownedBy(pid, uid) {
			continue
		}
		if st, err := readProcStat(pid); err != nil || !st.live() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte(key)); ok {
				dirs[filepath.Dir(string(v))] = true
			}
		}
	}
	return dirs
}

// ownedBy reports whether pid's /proc entry belongs to uid, that is, whether
// the process runs as that user (and is dumpable).
func ownedBy(pid int, uid uint32) bool {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == uid
}

// hasEnv reports whether pid started with an entry in its environment for
// which match is true. Processes of other users are unreadable, and so never
// taken for ours.
func hasEnv(pid int, match func(kv string) bool) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if match(string(e)) {
			return true
		}
	}
	return false
}

func formatPids(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, " ")
}
