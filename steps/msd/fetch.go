package msd

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3API is the part of the S3 client fetch-msd uses.
type S3API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Options say what to fetch and where.
type Options struct {
	Bucket, Key string
	MD5         string // expected, lower-case hex
	Dest        string // the task folder ends up in Dest/TaskName
	TaskName    string // the archive's top folder, e.g. Task01_BrainTumour
	Concurrency int    // parallel ranged GETs
	PartSize    int64  // bytes per GET
	// CheckpointEvery is how many archive bytes at least go by between two
	// writes of the resume journal; 0 means 64 MiB.
	CheckpointEvery int64
	Log             io.Writer
}

// Result describes the extracted task folder.
type Result struct {
	DataDir     string
	MD5         string
	Bytes       int64
	Skipped     bool  // already extracted and verified: nothing fetched
	ResumedAt   int64 // archive offset an interrupted run's staging dir was complete to
	NumTraining int
	NumTest     int
}

// ChecksumError reports an archive whose MD5 is not the expected one.
type ChecksumError struct {
	Source    string
	Got, Want string
}

// Permanent: S3 checks every transfer, so a mismatch means the source is not
// the archive the md5 names; downloading it again would not change that.
func (e *ChecksumError) Permanent() bool { return true }

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: MD5 %s, want %s: nothing was kept; check `md5` or the source", e.Source, e.Got, e.Want)
}

// markerName is written into the task folder once its archive verified; its
// presence with the same MD5 makes a rerun skip the step.
const markerName = ".gpipe-msd.json"

type marker struct {
	Source string `json:"source"`
	MD5    string `json:"md5"`
	Bytes  int64  `json:"bytes"`
}

// Fetch downloads s3://Bucket/Key with parallel ranged GETs, verifies its MD5
// and extracts it into Dest, all at once: parts arrive out of order, are put
// back in order, and each in-order part goes both to the MD5 and to the tar
// extractor, which run in parallel.
//
// Extraction goes to Dest/.gpipe-msd-<task>.staging and is renamed into
// place only once the MD5 matched: a wrong MD5 or a hostile entry keeps
// nothing. While it runs, Dest/.gpipe-msd-<task>.resume.json records how far
// the staging directory is complete (see journal), so a rerun after a crash
// or an interruption downloads only from there on.
func Fetch(ctx context.Context, client S3API, o Options) (*Result, error) {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.PartSize < 1<<20 {
		o.PartSize = 1 << 20
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 64 << 20
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	src := "s3://" + o.Bucket + "/" + o.Key
	final := filepath.Join(o.Dest, o.TaskName)
	if res, ok := verified(final, o.MD5); ok {
		fmt.Fprintf(o.Log, "fetch-msd: %s already extracted and verified (md5 %s)\n", final, o.MD5)
		return res, nil
	}
	if err := os.MkdirAll(o.Dest, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.Dest, err)
	}
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &o.Bucket, Key: &o.Key})
	if err != nil {
		return nil, fmt.Errorf("head %s: %w", src, err)
	}
	obj := object{Bucket: o.Bucket, Key: o.Key, ETag: aws.ToString(head.ETag), Size: aws.ToInt64(head.ContentLength), PartSize: o.PartSize}
	prefix := filepath.Join(o.Dest, ".gpipe-msd-"+o.TaskName)
	run := &fetchJob{client: client, obj: obj, concurrency: o.Concurrency, stage: prefix + ".staging",
		journalPath: prefix + ".resume.json", log: o.Log, checkpointEvery: o.CheckpointEvery}
	// The part spool of earlier gpipe versions is no longer used.
	if err := os.RemoveAll(prefix + ".partial"); err != nil {
		return nil, fmt.Errorf("remove old spool: %w", err)
	}
	if err := run.prepare(); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "fetch-msd: %s: %d bytes in %d parts of %d MiB, resuming at byte %d, %d GETs at once\n",
		src, obj.Size, obj.parts(), o.PartSize>>20, run.start, o.Concurrency)

	start := time.Now()
	sum, skipped, err := run.stream(ctx)
	if err != nil {
		var ue *UnsafeEntryError
		if errors.As(err, &ue) || errors.Is(err, ErrChanged) {
			run.discard() // nothing worth resuming
		}
		return nil, err
	}
	if sum != o.MD5 {
		// The staging dir holds what produced the wrong sum: a rerun must
		// download afresh, not resume.
		run.discard()
		return nil, &ChecksumError{Source: src, Got: sum, Want: o.MD5}
	}
	res, err := install(run.stage, final, o.TaskName, marker{Source: src, MD5: sum, Bytes: obj.Size})
	if err != nil {
		return nil, err
	}
	run.discard()
	res.Bytes, res.ResumedAt = obj.Size, run.start
	d := time.Since(start)
	fmt.Fprintf(o.Log, "fetch-msd: %d bytes verified and extracted to %s in %s (%.0f MiB/s), %d ._/special entries skipped\n",
		obj.Size-run.start, final, d.Round(time.Millisecond), float64(obj.Size-run.start)/(1<<20)/d.Seconds(), skipped)
	return res, nil
}

// prepare resumes from the journal when it and the staging dir are usable,
// and otherwise starts with an empty staging dir.
func (r *fetchJob) prepare() error {
	if j, h, ok := loadJournal(r.journalPath, r.obj); ok && intact(r.stage, j.Files) {
		r.first, r.start, r.hash, r.state, r.resumed = j.Part, j.Offset, h, j.extractState, true
		return nil
	}
	r.discard()
	if err := os.MkdirAll(r.stage, 0o755); err != nil {
		return fmt.Errorf("create staging dir: %w", err)
	}
	r.first, r.start, r.hash, r.state, r.resumed = 0, 0, md5.New(), extractState{}, false
	return nil
}

// intact reports a staging dir that still holds the files a journal lists
// (nobody cleaned it up by hand since).
func intact(stage string, files []string) bool {
	root, err := os.OpenRoot(stage)
	if err != nil {
		return false
	}
	defer root.Close()
	for _, f := range files {
		if fi, err := root.Lstat(f); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// discard removes the staging dir and the journal.
func (r *fetchJob) discard() {
	os.Remove(r.journalPath)
	os.Remove(r.journalPath + ".tmp")
	os.RemoveAll(r.stage)
}

// verified reports a task folder whose marker records the expected MD5.
func verified(dir, md5sum string) (*Result, bool) {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return nil, false
	}
	var m marker
	if json.Unmarshal(b, &m) != nil || m.MD5 != md5sum {
		return nil, false
	}
	res, err := describe(dir)
	if err != nil {
		return nil, false
	}
	res.MD5, res.Bytes, res.Skipped = m.MD5, m.Bytes, true
	return res, true
}

// describe reads the case counts from dataset.json.
func describe(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "dataset.json"))
	if err != nil {
		return nil, fmt.Errorf("read dataset.json: %w", err)
	}
	var ds struct {
		NumTraining *int `json:"numTraining"`
		NumTest     *int `json:"numTest"`
		Training    []any
		Test        []any
	}
	if err := json.Unmarshal(b, &ds); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, "dataset.json"), err)
	}
	res := &Result{DataDir: dir, NumTraining: len(ds.Training), NumTest: len(ds.Test)}
	if ds.NumTraining != nil {
		res.NumTraining = *ds.NumTraining
	}
	if ds.NumTest != nil {
		res.NumTest = *ds.NumTest
	}
	return res, nil
}

// install moves the verified folder into place, replacing an unverified one.
func install(stage, final, task string, m marker) (*Result, error) {
	got := filepath.Join(stage, task)
	if _, err := os.Stat(filepath.Join(got, "dataset.json")); err != nil {
		entries, _ := os.ReadDir(stage)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return nil, fmt.Errorf("archive has no %s/dataset.json (top level: %s)", task, strings.Join(names, ", "))
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(got, markerName), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write marker: %w", err)
	}
	res, err := describe(got)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(final); err == nil {
		old := final + ".gpipe-old"
		if err := os.RemoveAll(old); err != nil {
			return nil, err
		}
		if err := os.Rename(final, old); err != nil {
			return nil, fmt.Errorf("move aside unverified %s: %w", final, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(got, final); err != nil {
		return nil, fmt.Errorf("move %s into place: %w", final, err)
	}
	res.DataDir, res.MD5 = final, m.MD5
	return res, nil
}
