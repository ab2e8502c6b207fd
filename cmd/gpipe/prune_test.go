package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gateSpec waits in its step until the file gate exists, so that its run is
// live (its runner holds the lease) for as long as the test needs.
func gateSpec(dir string) string {
	return `version: 1
name: gate
steps:
  - id: wait
    type: shell
    with:
      run: |
        echo waiting
        touch '` + dir + `/started'
        while [ ! -e '` + dir + `/gate' ]; do sleep 0.05; done
`
}

const quickSpec = `version: 1
name: quick
steps:
  - id: a
    type: shell
    with: {run: "echo a line of log"}
`

// TestS3RmPrune: on S3 state, rm and runs --prune delete a run's every
// object (state, spec snapshot, logs), refuse a live run (exit 3) and keep
// it when pruning, and touch no other run's objects.
func TestS3RmPrune(t *testing.T) {
	h := newS3Harness(t)
	h.writeFile("quick.yaml", quickSpec)
	h.writeFile("gate.yaml", gateSpec(h.dir))
	for _, id := range []string{"old-1", "old-2", "keep-me"} {
		h.must("run", "--run-id", id, "quick.yaml")
	}
	live := h.command(t.Context(), h.env, "run", "--run-id", "live", "gate.yaml")
	var liveOut lockedBuffer
	live.Stdout, live.Stderr = &liveOut, &liveOut
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Process.Kill() //nolint:errcheck // in case the test fails before the run ends
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(h.path("started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live run's step did not start within 30s:\n%s", liveOut.String())
		}
	}
	objectsOf := func(id string) []string {
		var keys []string
		for k := range h.allObjects() {
			if strings.Contains(k, "/"+id+"/") {
				keys = append(keys, k)
			}
		}
		return keys
	}
	if keys := objectsOf("old-1"); len(keys) < 3 {
		t.Fatalf("run old-1 has objects %v, want at least state, spec and a log", keys)
	}

	if r := h.gpipe("rm", "live"); r.code != exitHeld || !strings.Contains(r.stderr, "driven by another runner") {
		t.Errorf("rm of a live run: want exit 3 saying it is driven\n%s", r)
	}
	r := h.must("rm", "keep")
	if !strings.Contains(r.stdout, "deleted run keep-me") || len(objectsOf("keep-me")) != 0 {
		t.Errorf("rm keep (a prefix of keep-me): objects left %v\n%s", objectsOf("keep-me"), r)
	}
	r = h.must("runs", "--prune", "--older-than", "0s")
	for _, id := range []string{"old-1", "old-2"} {
		if !strings.Contains(r.stdout, "deleted run "+id) || len(objectsOf(id)) != 0 {
			t.Errorf("prune: run %s not deleted (objects %v)\n%s", id, objectsOf(id), r)
		}
	}
	if !strings.Contains(r.stderr, "keeping run live") || len(objectsOf("live")) == 0 {
		t.Errorf("prune touched the live run\n%s", r)
	}
	h.writeFile("gate", "")
	if err := live.Wait(); err != nil {
		t.Fatalf("live run: %v\n%s", err, liveOut.String())
	}
	h.must("rm", "live")
	if left := h.allObjects(); len(left) != 0 {
		t.Errorf("objects left after deleting every run: %v", left)
	}
}

// TestRmAbandonedHoldingStack: a run whose runner died while its stack was
// up is the only record of that stack: rm refuses it (naming gpipe
// teardown) unless --force, and prune keeps it.
func TestRmAbandonedHoldingStack(t *testing.T) {
	dir := t.TempDir()
	writeRunState(t, dir, deadRun("dead-1", time.Now().Add(-10*time.Minute)))
	getenv := func(string) string { return "" }
	var out, errb bytes.Buffer
	if code := runMain([]string{"runs", "--prune", "--older-than", "0s", "--state", dir}, nil, &out, &errb, getenv); code != 0 {
		t.Fatalf("prune: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "keeping run dead-1") {
		t.Errorf("prune does not say it keeps dead-1:\n%s", errb.String())
	}
	errb.Reset()
	code := runMain([]string{"rm", "--state", dir, "dead-1"}, nil, &out, &errb, getenv)
	if code != exitFailed || !strings.Contains(errb.String(), "gpipe teardown") {
		t.Errorf("rm dead-1: exit %d, want 1 pointing at gpipe teardown\n%s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "dead-1")); err != nil {
		t.Errorf("rm without --force deleted the run: %v", err)
	}
	if code := runMain([]string{"rm", "--force", "--state", dir, "dead-1"}, nil, &out, &errb, getenv); code != 0 {
		t.Fatalf("rm --force: exit %d\n%s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "dead-1")); !os.IsNotExist(err) {
		t.Errorf("rm --force left the run: %v", err)
	}
}
