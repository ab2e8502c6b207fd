package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A writer killed between writing a new snapshot and emptying the journal
// leaves a journal whose records the snapshot already holds: they must not be
// replayed over it, and the next Append starts a new journal.
func TestJournalCrashBetweenSnapshotAndJournal(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	v, err := s.Create(ctx, "r", []byte("snap-0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []string{"a", "b"} {
		if v, err = s.Append(ctx, "r", []byte(rec), v); err != nil {
			t.Fatal(err)
		}
	}
	jpath := filepath.Join(s.runDir("r"), journalFile)
	old, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := s.Save(ctx, "r", []byte("snap-ab"), v)
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the journal as it was before the Save emptied it.
	if err := os.WriteFile(jpath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, New(s.dir)} { // this writer's cache, and a fresh process
		doc, recs, lv, err := st.LoadJournal(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if string(doc) != "snap-ab" || len(recs) != 0 || lv != sv {
			t.Fatalf("after the crash: LoadJournal = %q, %q, %q; want the new snapshot alone at %q", doc, recs, lv, sv)
		}
	}
	nv, err := New(s.dir).Append(ctx, "r", []byte("c"), sv)
	if err != nil {
		t.Fatalf("Append after the crash: %v", err)
	}
	doc, recs, lv, err := s.LoadJournal(ctx, "r")
	if err != nil || string(doc) != "snap-ab" || len(recs) != 1 || string(recs[0]) != "c" || lv != nv {
		t.Fatalf("LoadJournal = %q, %q, %q, %v; want snap-ab, [c], %q", doc, recs, lv, err, nv)
	}
}

// A record torn by a crash (no newline, or a bad checksum) ends the journal;
// the next Append cuts it off before writing.
// A power loss before Flush can leave the journal's last pages unwritten:
// the file keeps its new size but reads zeros where records were, possibly
// with a later page that did reach the disk after them. The journal must end
// at the hole, so that what loads is an earlier state, never one with
// changes missing in its middle.
func TestJournalPowerLossHole(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	v, err := s.Create(ctx, "r", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []string{"a", "b", "c"} {
		if v, err = s.Append(ctx, "r", []byte(rec), v); err != nil {
			t.Fatal(err)
		}
	}
	jpath := filepath.Join(s.runDir("r"), journalFile)
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	// Zero record b's line; c's stays.
	i := bytes.Index(b, []byte(" b\n"))
	start := bytes.LastIndexByte(b[:i], '\n') + 1
	copy(b[start:i+3], make([]byte, i+3-start))
	if err := os.WriteFile(jpath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, recs, _, err := New(s.dir).LoadJournal(ctx, "r")
	if err != nil || len(recs) != 1 || string(recs[0]) != "a" {
		t.Fatalf("LoadJournal = %q, %v; want [a]: the journal ends at the hole", recs, err)
	}
}

func TestFlush(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	v, err := s.Create(ctx, "r", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	// No journal yet: the snapshot is on disk since Create.
	if err := s.Flush(ctx, "r"); err != nil {
		t.Fatalf("Flush without a journal: %v", err)
	}
	if _, err := s.Append(ctx, "r", []byte("a"), v); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx, "../x"); err == nil {
		t.Fatal("Flush accepted a run id with a path in it")
	}
}

func TestJournalTornRecord(t *testing.T) {
	for name, tail := range map[string]string{
		"half a line":  `1234abcd {"half"`,
		"bad checksum": "00000000 whole but wrong\n",
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := New(t.TempDir())
			v, err := s.Create(ctx, "r", []byte("snap"))
			if err != nil {
				t.Fatal(err)
			}
			if v, err = s.Append(ctx, "r", []byte("a"), v); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(s.runDir("r"), journalFile), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tail)
			f.Close()
			fresh := New(s.dir)
			_, recs, lv, err := fresh.LoadJournal(ctx, "r")
			if err != nil || len(recs) != 1 || string(recs[0]) != "a" || lv != v {
				t.Fatalf("LoadJournal = %q, %q, %v; want [a] at %q", recs, lv, err, v)
			}
			if _, err := fresh.Append(ctx, "r", []byte("b"), lv); err != nil {
				t.Fatal(err)
			}
			_, recs, _, err = New(s.dir).LoadJournal(ctx, "r")
			if err != nil || !slices.Equal([]string{string(recs[0]), string(recs[1])}, []string{"a", "b"}) || len(recs) != 2 {
				t.Fatalf("after the next Append: %q, %v; want [a b]", recs, err)
			}
		})
	}
}

// journalWriter is TestKill9Journal's writer: it appends the next number as a
// record, and every 25 records saves a snapshot holding them all.
func journalWriter(dir string) {
	ctx := context.Background()
	s := New(dir)
	doc, recs, v, err := s.LoadJournal(ctx, "crash")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var n []int
	if err := json.Unmarshal(doc, &n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	n = append(n, make([]int, len(recs))...)
	for i := range recs {
		n[len(n)-len(recs)+i] = len(n) - len(recs) + i
	}
	os.Stdout.WriteString("ready\n")
	for k := 0; ; k++ {
		if k%25 == 24 {
			doc, _ = json.Marshal(n)
			v, err = s.Save(ctx, "crash", doc, v)
		} else {
			v, err = s.Append(ctx, "crash", fmt.Append(nil, len(n)), v)
			n = append(n, len(n))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "save:", err)
			os.Exit(2)
		}
	}
}

// TestKill9Journal kills a process appending records and saving snapshots,
// many times, and checks that the run always loads, its snapshot and records
// together are 0, 1, 2, ... with nothing lost or repeated, and only grow.
func TestKill9Journal(t *testing.T) {
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
	for round := range 12 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "GPIPE_FILE_JOURNAL_WRITER="+dir)
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
		doc, recs, _, err := New(dir).LoadJournal(ctx, "crash")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var n []int
		if err := json.Unmarshal(doc, &n); err != nil {
			t.Fatalf("round %d: snapshot does not decode after kill -9: %v\n%s", round, err, doc)
		}
		for _, r := range recs {
			var x int
			if err := json.Unmarshal(r, &x); err != nil {
				t.Fatalf("round %d: record %q: %v", round, r, err)
			}
			n = append(n, x)
		}
		if len(n) < last {
			t.Fatalf("round %d: run shrank from %d to %d entries", round, last, len(n))
		}
		for i, x := range n {
			if x != i {
				t.Fatalf("round %d: entry %d is %d (snapshot %d entries, %d records)", round, i, x, len(n)-len(recs), len(recs))
			}
		}
		t.Logf("round %d: %d entries (%d in records)", round, len(n), len(recs))
		last = len(n)
	}
	if last < 30 {
		t.Fatalf("the writer only wrote %d entries: no snapshot was taken under the kills", last)
	}
}

// Create makes the run's journal, empty, so that the directory fsync that
// makes the run durable covers it and the first Append need not. An empty
// journal holds no records, and a run made without one (by an older gpipe)
// still gets one on its first Append.
func TestCreateMakesEmptyJournal(t *testing.T) {
	ctx := t.Context()
	s := New(t.TempDir())
	for _, id := range []string{"new", "old"} {
		v, err := s.Create(ctx, id, []byte("snap"))
		if err != nil {
			t.Fatal(err)
		}
		jpath := filepath.Join(s.runDir(id), journalFile)
		if fi, err := os.Stat(jpath); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("journal after Create: %v, %v; want an empty file of mode 0600", fi, err)
		}
		doc, recs, lv, err := New(s.dir).LoadJournal(ctx, id)
		if err != nil || string(doc) != "snap" || len(recs) != 0 || lv != v {
			t.Fatalf("LoadJournal of a new run = %q, %q, %q, %v; want the snapshot alone at %q", doc, recs, lv, err, v)
		}
		if id == "old" {
			if err := os.Remove(jpath); err != nil {
				t.Fatal(err)
			}
		}
		nv, err := s.Append(ctx, id, []byte("a"), v)
		if err != nil {
			t.Fatal(err)
		}
		_, recs, lv, err = New(s.dir).LoadJournal(ctx, id)
		if err != nil || len(recs) != 1 || string(recs[0]) != "a" || lv != nv {
			t.Fatalf("after an Append: %q, %q, %v; want [a] at %q", recs, lv, err, nv)
		}
	}
}

// gpipe run puts the spec snapshot before it creates the run; the blob is
// there once the run is, and a blob of an existing run is replaced.
func TestBlobBeforeCreate(t *testing.T) {
	ctx := t.Context()
	s := New(filepath.Join(t.TempDir(), "new", ".gpipe"))
	if err := s.PutBlob(ctx, "r", "spec.yaml", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "r"); err == nil {
		t.Fatal("a blob alone made a run")
	}
	if _, err := s.Create(ctx, "r", []byte("snap")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, "r", "spec.yaml", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, err := New(s.dir).GetBlob(ctx, "r", "spec.yaml"); err != nil || string(b) != "two" {
		t.Fatalf("GetBlob = %q, %v; want two", b, err)
	}
}
