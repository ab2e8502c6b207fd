package msd

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gpipe/gpipe/internal/testtool"
)

// failingClient stops serving GETs after a number of them, as a network loss
// would (or, with hang, as a process about to be killed would: the GET never
// returns).
type failingClient struct {
	S3API
	gets, limit atomic.Int64
	hang        bool
}

func (c *failingClient) GetObject(ctx context.Context, in *s3.GetObjectInput, opt ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if n := c.gets.Add(1); c.limit.Load() > 0 && n > c.limit.Load() {
		if c.hang {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, errors.New("connection reset (injected)")
	}
	return c.S3API.GetObject(ctx, in, opt...)
}

func readJournal(t *testing.T, path string) journal {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("resume journal: %v", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("resume journal: %v", err)
	}
	return j
}

// sameAsArchive checks that dir holds exactly the archive's regular files
// (minus ._ files), byte for byte.
func sameAsArchive(t *testing.T, archive []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(filepath.Base(h.Name), "._") {
			continue
		}
		want, _ := io.ReadAll(tr)
		got, err := os.ReadFile(filepath.Join(dir, h.Name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want the archive's %d", h.Name, len(got), err, len(want))
		}
		n++
	}
	var files int
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Name() != markerName {
			files++
		}
		return nil
	})
	if files != n {
		t.Errorf("%s holds %d files, the archive %d", dir, files, n)
	}
}

// TestFetchResumes interrupts fetches at the worst moments — killed while a
// GET hangs (only the journal written on the way is left), and a lost
// connection — and checks that the rerun downloads only from the journal's
// part on and produces exactly the archive.
func TestFetchResumes(t *testing.T) {
	data, sum := buildTar(t, msdArchive(t, "Task04_Hippocampus", 8, 1100<<10)) // volumes written with direct I/O
	bucket := s3Env(t, map[string][]byte{"Task04_Hippocampus.tar": data})
	parts := (len(data) + 1<<20 - 1) >> 20
	inner, err := SDKClient(t.Context(), "us-east-1", false)
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	jpath := filepath.Join(dest, ".gpipe-msd-Task04_Hippocampus.resume.json")
	opts := Options{Bucket: bucket, Key: "Task04_Hippocampus.tar", MD5: sum, Dest: dest, TaskName: "Task04_Hippocampus",
		Concurrency: 1, PartSize: 1 << 20, CheckpointEvery: 1}

	// 1. The 5th GET hangs; journals are written as extraction goes. Take
	// the one on disk once extraction passed 3 MiB, as a kill -9 would
	// leave it, while the staging dir holds more than it says.
	hung := &failingClient{S3API: inner, hang: true}
	hung.limit.Store(4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := Fetch(ctx, hung, opts); done <- err }()
	var saved []byte
	for deadline := time.Now().Add(20 * time.Second); saved == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no resume journal past 3 MiB while the fetch hung")
		}
		if b, err := os.ReadFile(jpath); err == nil {
			var j journal
			if json.Unmarshal(b, &j) == nil && j.Offset >= 3<<20 {
				saved = b
			}
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: %v", err)
	}
	if err := os.WriteFile(jpath, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	j := readJournal(t, jpath)

	counting := &failingClient{S3API: inner}
	res, err := Fetch(t.Context(), counting, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := counting.gets.Load(), int64(parts-j.Part); got != want || res.ResumedAt != j.Offset {
		t.Errorf("resumed fetch made %d GETs from byte %d, want %d (of %d parts) from %d", got, res.ResumedAt, want, parts, j.Offset)
	}
	if res.MD5 != sum || res.NumTraining != 8 {
		t.Errorf("result %+v", res)
	}
	sameAsArchive(t, data, dest)
	if entries, _ := os.ReadDir(dest); len(entries) != 1 {
		t.Errorf("dest holds more than the task folder (journal, staging left?): %v", entries)
	}

	// 2. Through the step: the connection dies after 4 GETs; the journal
	// written on the way out makes the rerun download only what follows.
	dest2 := t.TempDir()
	lost := &failingClient{S3API: inner}
	lost.limit.Store(4)
	f := &FetchMSD{NewClient: func(context.Context, string, bool) (S3API, error) { return lost, nil }}
	with := map[string]any{"task": "Task04_Hippocampus", "source": "s3://" + bucket + "/Task04_Hippocampus.tar",
		"md5": sum, "dest": dest2, "concurrency": 1, "part_size_mib": 1}
	if _, err := f.Run(t.Context(), fetchRun(with)); err == nil {
		t.Fatal("fetch with a dying connection succeeded")
	}
	j = readJournal(t, filepath.Join(dest2, ".gpipe-msd-Task04_Hippocampus.resume.json"))
	if j.Part < 3 {
		t.Fatalf("journal after losing the connection at part 4 resumes at part %d", j.Part)
	}
	lost.gets.Store(0)
	lost.limit.Store(0)
	out, err := f.Run(t.Context(), fetchRun(with))
	if err != nil {
		t.Fatal(err)
	}
	if got := lost.gets.Load(); got != int64(parts-j.Part) {
		t.Errorf("resumed step made %d GETs, want %d", got, parts-j.Part)
	}
	if out.Outputs["md5"] != sum || out.Outputs["num_training"] != "8" {
		t.Errorf("outputs %v", out.Outputs)
	}
	sameAsArchive(t, data, dest2)
}

// TestFetchStartsOver: a staging dir that cannot be trusted is not resumed
// from — extracted data never fsynced, after the machine restarted; or a
// staging dir someone cleaned up by hand.
func TestFetchStartsOver(t *testing.T) {
	if bootID() == "" {
		testtool.Unavailable(t, "no boot id (/proc/sys/kernel/random/boot_id) on this system: resume is disabled")
	}
	data, sum := buildTar(t, msdArchive(t, "Task04_Hippocampus", 4, 600<<10))
	bucket := s3Env(t, map[string][]byte{"Task04_Hippocampus.tar": data})
	parts := (len(data) + 1<<20 - 1) >> 20
	inner, err := SDKClient(t.Context(), "us-east-1", false)
	if err != nil {
		t.Fatal(err)
	}
	const vol = "Task04_Hippocampus/imagesTr/case_000.nii.gz"
	for name, damage := range map[string]func(j *journal, stage string) error{
		"after a reboot": func(j *journal, stage string) error {
			j.BootID = "an-earlier-boot"
			// As a power loss could leave it: a resume would keep it.
			return os.WriteFile(filepath.Join(stage, vol), nil, 0o644)
		},
		"staging dir cleaned": func(j *journal, stage string) error {
			return os.Remove(filepath.Join(stage, vol))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			opts := Options{Bucket: bucket, Key: "Task04_Hippocampus.tar", MD5: sum, Dest: dest, TaskName: "Task04_Hippocampus",
				Concurrency: 2, PartSize: 1 << 20}
			c := &failingClient{S3API: inner}
			c.limit.Store(3)
			if _, err := Fetch(t.Context(), c, opts); err == nil {
				t.Fatal("fetch with a dying connection succeeded")
			}
			jpath := filepath.Join(dest, ".gpipe-msd-Task04_Hippocampus.resume.json")
			j := readJournal(t, jpath)
			if j.Part == 0 {
				t.Fatal("nothing to resume from: the test proves nothing")
			}
			if err := damage(&j, filepath.Join(dest, ".gpipe-msd-Task04_Hippocampus.staging")); err != nil {
				t.Fatal(err)
			}
			if err := j.save(jpath); err != nil {
				t.Fatal(err)
			}
			c.gets.Store(0)
			c.limit.Store(0)
			res, err := Fetch(t.Context(), c, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.gets.Load(); got != int64(parts) || res.ResumedAt != 0 {
				t.Errorf("%d GETs from byte %d, want all %d from 0", got, res.ResumedAt, parts)
			}
			sameAsArchive(t, data, dest)
		})
	}
}
