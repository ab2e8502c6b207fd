package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) state.Store { return New(filepath.Join(t.TempDir(), ".gpipe")) },
		func(s state.Store) state.Store { return New(s.(*Store).Dir()) })
}

func TestLayout(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := New(dir)
	if _, err := s.Create(ctx, "r-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "r-1", "spec.yaml", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, "r-1", "train.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"runs/r-1/state.json", "runs/r-1/spec.yaml", "runs/r-1/logs/train.1.log"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
	for _, reserved := range []string{"state.json", "logs"} {
		if err := s.PutBlob(ctx, "r-1", reserved, []byte("x")); !errors.Is(err, state.ErrInvalidName) {
			t.Errorf("PutBlob(%q): got %v, want ErrInvalidName", reserved, err)
		}
	}
}

// TestPrivateFiles: a step log is as private as the state document (0600),
// whatever the umask, since a step's output may hold what it was given.
func TestPrivateFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := New(dir)
	if _, err := s.Create(ctx, "r-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, "r-1", "train.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"runs/r-1/state.json", "runs/r-1/logs/train.1.log"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", p, m)
		}
	}
}

// The writer process: saves ever-growing JSON documents until killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("GPIPE_FILE_CRASH_WRITER"); dir != "" {
		crashWriter(dir)
		return
	}
	if dir := os.Getenv("GPIPE_FILE_JOURNAL_WRITER"); dir != "" {
		journalWriter(dir)
		return
	}
	os.Exit(m.Run())
}

func crashWriter(dir string) {
	ctx := context.Background()
	s := New(dir)
	doc, v, err := s.Load(ctx, "crash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var n []int
	if err := json.Unmarshal(doc, &n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Stdout.WriteString("ready\n")
	for {
		n = append(n, len(n))
		doc, _ = json.Marshal(n)
		if v, err = s.Save(ctx, "crash", doc, v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

// TestKill9 kills a process in the middle of saving, many times, and checks
// that the document always loads, is whole, and only grows.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	ctx := t.Context()
	if _, err := s.Create(ctx, "crash", []byte("[]")); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for round := range 10 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "GPIPE_FILE_CRASH_WRITER="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil {
			t.Fatalf("round %d: writer did not start: %v %s", round, err, stderr.Bytes())
		}
		time.Sleep(time.Duration(5+round*7) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if bytes.Contains(stderr.Bytes(), []byte("save")) {
			t.Fatalf("round %d: writer failed: %s", round, stderr.Bytes())
		}
		doc, v, err := s.Load(ctx, "crash")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var n []int
		if err := json.Unmarshal(doc, &n); err != nil {
			t.Fatalf("round %d: document does not decode after kill -9: %v\n%s", round, err, doc)
		}
		if len(n) < last {
			t.Fatalf("round %d: document shrank from %d to %d entries", round, last, len(n))
		}
		for i, x := range n {
			if x != i {
				t.Fatalf("round %d: entry %d is %d", round, i, x)
			}
		}
		last = len(n)
		left := tempFiles(t, s.runDir("crash"))
		if _, err := s.Save(ctx, "crash", doc, v); err != nil {
			t.Fatalf("round %d: Save after the crash: %v (lock left behind?)", round, err)
		}
		if after := tempFiles(t, s.runDir("crash")); len(after) > 0 {
			t.Errorf("round %d: temporary files %q of the killed writer are still there after a Save", round, after)
		}
		t.Logf("round %d: %s entries survived; the killed writer left %d temporary files", round, strconv.Itoa(len(n)), len(left))
	}
	if last == 0 {
		t.Fatal("the writer never saved anything")
	}
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A writer killed in the middle of replacing a file leaves its temporary
// file; the next save of that run (one a resume makes to take the lease)
// removes it, and only that run's, and not a stored file.
func TestSaveRemovesTempFilesOfDeadWriters(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := New(dir)
	for _, id := range []string{"r", "other"} {
		if _, err := s.Create(ctx, id, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBlob(ctx, id, "spec.yaml.tmp-1", []byte("a blob with a temp-like name")); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{".state.json.tmp-123", ".spec.yaml.tmp-456"} {
			if err := os.WriteFile(filepath.Join(s.runDir(id), n), []byte("half"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	doc, v, err := New(dir).Load(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir).Save(ctx, "r", doc, v); err != nil {
		t.Fatal(err)
	}
	if left := tempFiles(t, s.runDir("r")); len(left) > 0 {
		t.Errorf("after a save: %q", left)
	}
	if left := tempFiles(t, s.runDir("other")); len(left) != 2 {
		t.Errorf("temporary files of another run: %q, want both kept until that run is saved", left)
	}
	if b, err := s.GetBlob(ctx, "r", "spec.yaml.tmp-1"); err != nil || string(b) != "a blob with a temp-like name" {
		t.Errorf("blob: %q, %v", b, err)
	}
}
