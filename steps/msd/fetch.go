package msd

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
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
	PartSize    int64  // bytes per GET and per spooled part
	Log         io.Writer
}

// Result describes the extracted task folder.
type Result struct {
	DataDir     string
	MD5         string
	Bytes       int64
	Skipped     bool // already extracted and verified: nothing fetched
	PartsReused int  // parts taken from the .partial spool of an earlier run
	NumTraining int
	NumTest     int
}

// ChecksumError reports an archive whose MD5 is not the expected one.
type ChecksumError struct {
	Source    string
	Got, Want string
}

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

// spoolMeta identifies the object the spooled parts belong to; parts of a
// changed object (ETag, size) or another part size are discarded.
type spoolMeta struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	ETag     string `json:"etag"`
	Size     int64  `json:"size"`
	PartSize int64  `json:"part_size"`
}

// Fetch downloads s3://Bucket/Key with parallel ranged GETs, verifies its MD5
// and extracts it into Dest, all at once: parts arrive out of order into a
// window, are put back in order, and each in-order part goes both to the
// MD5 and (through a pipe) to the tar extractor, which write in parallel.
//
// Every part is also kept in Dest/.gpipe-msd-<task>.partial until the fetch
// succeeds, so a rerun after a crash or an interruption downloads only the
// parts it lacks. Extraction goes to Dest/.gpipe-msd-<task>.staging and is
// renamed into place only once the MD5 matched: a wrong MD5 or a hostile
// entry keeps nothing.
func Fetch(ctx context.Context, client S3API, o Options) (*Result, error) {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.PartSize < 1<<20 {
		o.PartSize = 1 << 20
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
	size := aws.ToInt64(head.ContentLength)
	meta := spoolMeta{Bucket: o.Bucket, Key: o.Key, ETag: aws.ToString(head.ETag), Size: size, PartSize: o.PartSize}
	spool := filepath.Join(o.Dest, ".gpipe-msd-"+o.TaskName+".partial")
	have, err := openSpool(spool, meta)
	if err != nil {
		return nil, err
	}
	stage := filepath.Join(o.Dest, ".gpipe-msd-"+o.TaskName+".staging")
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("clear staging dir: %w", err)
	}
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	fmt.Fprintf(o.Log, "fetch-msd: %s: %d bytes in %d parts of %d MiB, %d already spooled, %d GETs at once\n",
		src, size, len(have), o.PartSize>>20, count(have), o.Concurrency)

	start := time.Now()
	sum, skipped, err := stream(ctx, client, o, meta, spool, have, stage)
	if err != nil {
		os.RemoveAll(stage)
		return nil, err
	}
	if sum != o.MD5 {
		os.RemoveAll(stage)
		// The spooled bytes are what produced the wrong sum: a rerun must
		// download afresh, not reassemble the same bytes.
		os.RemoveAll(spool)
		return nil, &ChecksumError{Source: src, Got: sum, Want: o.MD5}
	}
	res, err := install(stage, final, o.TaskName, marker{Source: src, MD5: sum, Bytes: size})
	if err != nil {
		return nil, err
	}
	os.RemoveAll(spool)
	os.RemoveAll(stage)
	res.Bytes, res.PartsReused = size, count(have)
	d := time.Since(start)
	fmt.Fprintf(o.Log, "fetch-msd: %d bytes verified and extracted to %s in %s (%.0f MiB/s), %d ._/special entries skipped\n",
		size, final, d.Round(time.Millisecond), float64(size)/(1<<20)/d.Seconds(), skipped)
	return res, nil
}

func count(have []bool) int {
	n := 0
	for _, h := range have {
		if h {
			n++
		}
	}
	return n
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

// openSpool returns which parts the spool already holds for this object,
// discarding a spool of another object.
func openSpool(dir string, meta spoolMeta) ([]bool, error) {
	n := int((meta.Size + meta.PartSize - 1) / meta.PartSize)
	have := make([]bool, n)
	want, _ := json.Marshal(meta)
	if b, err := os.ReadFile(filepath.Join(dir, "meta.json")); err != nil || string(b) != string(want) {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("clear spool: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create spool: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), want, 0o644); err != nil {
		return nil, fmt.Errorf("write spool meta: %w", err)
	}
	for i := range have {
		fi, err := os.Stat(partPath(dir, i))
		have[i] = err == nil && fi.Size() == partLen(meta, i)
	}
	return have, nil
}

func partPath(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("part-%06d", i)) }

func partLen(m spoolMeta, i int) int64 {
	return min(m.PartSize, m.Size-int64(i)*m.PartSize)
}

// chunk is one in-order part on its way to the MD5 and the extractor; the
// last of the two consumers frees its window slot.
type chunk struct {
	data []byte
	refs sync.WaitGroup
}

// stream runs the download, reassembly, MD5 and extraction pipeline and
// returns the MD5 of all bytes.
func stream(ctx context.Context, client S3API, o Options, meta spoolMeta, spool string, have []bool, stage string) (string, int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := len(have)
	window := make(chan struct{}, o.Concurrency+2)
	jobs := make(chan int)
	ready := make([]chan []byte, n)
	for i := range ready {
		ready[i] = make(chan []byte, 1)
	}

	var wg sync.WaitGroup
	wg.Go(func() { // dispatch in order, at most a window ahead of reassembly
		defer close(jobs)
		for i := range n {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	for range o.Concurrency {
		wg.Go(func() {
			for i := range jobs {
				data, err := loadPart(ctx, client, meta, spool, i, have[i])
				if err != nil {
					cancel(err)
					return
				}
				ready[i] <- data
			}
		})
	}

	pr, pw := io.Pipe()
	hash := md5.New()
	toHash := make(chan *chunk, 2)
	toTar := make(chan *chunk, 2)
	var extractErr error
	var skipped int
	wg.Go(func() {
		for c := range toHash {
			hash.Write(c.data)
			c.refs.Done()
		}
	})
	wg.Go(func() {
		skipped, extractErr = extractTar(pr, stage)
		if extractErr != nil {
			pr.CloseWithError(extractErr)
			cancel(extractErr)
		}
	})
	wg.Go(func() {
		defer pw.Close()
		for c := range toTar {
			if _, err := pw.Write(c.data); err != nil {
				c.refs.Done()
				for c := range toTar {
					c.refs.Done()
				}
				return
			}
			c.refs.Done()
		}
	})

	var err error
reassemble:
	for i := range n {
		var data []byte
		select {
		case data = <-ready[i]:
		case <-ctx.Done():
			err = context.Cause(ctx)
			break reassemble
		}
		c := &chunk{data: data}
		c.refs.Add(2)
		toHash <- c
		toTar <- c
		go func() { c.refs.Wait(); <-window }()
	}
	close(toHash)
	close(toTar)
	if err != nil {
		pw.CloseWithError(err)
	}
	wg.Wait()
	if extractErr != nil {
		return "", skipped, fmt.Errorf("extract s3://%s/%s: %w", o.Bucket, o.Key, extractErr)
	}
	if err != nil {
		return "", skipped, fmt.Errorf("download s3://%s/%s: %w", o.Bucket, o.Key, err)
	}
	return hex.EncodeToString(hash.Sum(nil)), skipped, nil
}

// loadPart returns part i from the spool or downloads (and spools) it.
func loadPart(ctx context.Context, client S3API, meta spoolMeta, spool string, i int, spooled bool) ([]byte, error) {
	p := partPath(spool, i)
	if spooled {
		b, err := os.ReadFile(p)
		if err == nil && int64(len(b)) == partLen(meta, i) {
			return b, nil
		}
	}
	from := int64(i) * meta.PartSize
	want := partLen(meta, i)
	rng := fmt.Sprintf("bytes=%d-%d", from, from+want-1)
	var data []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		data, err = getRange(ctx, client, meta, rng, want)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("part %d (%s): %w", i, rng, err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return nil, fmt.Errorf("spool part %d: %w", i, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, fmt.Errorf("spool part %d: %w", i, err)
	}
	return data, nil
}

// ErrChanged reports that the object changed while it was being fetched.
var ErrChanged = errors.New("object changed during download")

func getRange(ctx context.Context, client S3API, meta spoolMeta, rng string, want int64) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: &meta.Bucket, Key: &meta.Key, Range: &rng}
	if meta.ETag != "" {
		in.IfMatch = &meta.ETag
	}
	out, err := client.GetObject(ctx, in)
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "PreconditionFailed" {
			return nil, fmt.Errorf("%w (ETag is no longer %s): rerun to start over", ErrChanged, meta.ETag)
		}
		return nil, err
	}
	defer out.Body.Close()
	buf := make([]byte, want)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
