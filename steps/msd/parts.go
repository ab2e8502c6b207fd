package msd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// object identifies the archive being fetched and how it is cut into parts;
// a resume journal of another object (ETag, size) or part size is discarded.
type object struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	ETag     string `json:"etag"`
	Size     int64  `json:"size"`
	PartSize int64  `json:"part_size"`
}

func (m object) parts() int { return int((m.Size + m.PartSize - 1) / m.PartSize) }

func (m object) partLen(i int) int64 { return min(m.PartSize, m.Size-int64(i)*m.PartSize) }

// chunk is one downloaded part on its way to the MD5 and the extractor. Its
// buffer goes back to the pool when both have released it.
type chunk struct {
	index int
	data  []byte
	refs  atomic.Int32
	free  func(*chunk)
}

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		c.free(c)
	}
}

// bufPool recycles part buffers: the window bounds how many exist, and
// reusing them spares the allocator (and, on VMs, the host) a fresh
// gigabyte of pages per gigabyte fetched.
type bufPool struct {
	size int64
	free chan []byte
}

func newBufPool(size int64, n int) *bufPool {
	return &bufPool{size: size, free: make(chan []byte, n)}
}

func (p *bufPool) get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, p.size)
	}
}

func (p *bufPool) put(b []byte) {
	select {
	case p.free <- b[:cap(b)]:
	default:
	}
}

// ErrChanged reports that the object changed while it was being fetched.
var ErrChanged = errors.New("object changed during download")

// download reads part i into buf, retrying transient failures.
func download(ctx context.Context, client S3API, obj object, i int, buf []byte) ([]byte, error) {
	from := int64(i) * obj.PartSize
	want := obj.partLen(i)
	rng := fmt.Sprintf("bytes=%d-%d", from, from+want-1)
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		err = getRange(ctx, client, obj, rng, buf[:want])
		if err == nil {
			return buf[:want], nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrChanged) {
			break
		}
	}
	return nil, fmt.Errorf("part %d (%s): %w", i, rng, err)
}

func getRange(ctx context.Context, client S3API, obj object, rng string, buf []byte) error {
	in := &s3.GetObjectInput{Bucket: &obj.Bucket, Key: &obj.Key, Range: &rng}
	if obj.ETag != "" {
		in.IfMatch = &obj.ETag
	}
	out, err := client.GetObject(ctx, in)
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "PreconditionFailed" {
			return fmt.Errorf("%w (ETag is no longer %s): rerun to start over", ErrChanged, obj.ETag)
		}
		return err
	}
	defer out.Body.Close()
	_, err = io.ReadFull(out.Body, buf)
	return err
}
