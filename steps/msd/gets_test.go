package msd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// oneBadPart is an object whose third part fails at once while every other
// GET hangs until its context ends, counting those that were cut short.
type oneBadPart struct {
	size      int64
	bad       string // the Range prefix of the part that fails
	answer    bool   // the other GETs answer at once (zeros) rather than hang
	cancelled atomic.Int32
}

var errBadPart = errors.New("connection reset (injected)")

func (o *oneBadPart) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(o.size), ETag: aws.String(`"e"`)}, nil
}

func (o *oneBadPart) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if strings.HasPrefix(aws.ToString(in.Range), o.bad) {
		return nil, errBadPart
	}
	if o.answer {
		var lo, hi int64
		fmt.Sscanf(aws.ToString(in.Range), "bytes=%d-%d", &lo, &hi)
		return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(make([]byte, hi-lo+1))), ContentLength: aws.Int64(hi - lo + 1)}, nil
	}
	<-ctx.Done()
	o.cancelled.Add(1)
	return nil, ctx.Err()
}

// TestFailedGetCancelsTheOthers: the first ranged GET that fails stops the
// ones in flight, and Fetch reports that failure, not their cancellation.
func TestFailedGetCancelsTheOthers(t *testing.T) {
	client := &oneBadPart{size: 8 << 20, bad: "bytes=2097152-"}
	fetchFails(t, client, 4)
	if n := client.cancelled.Load(); n != 3 {
		t.Errorf("%d GETs in flight were cancelled, want the other 3", n)
	}
}

// TestFailedFirstGetEndsFetch: the first part fails while the later ones
// arrive and fill the reassembly window; downloaders left idle must not keep
// the fetch waiting.
func TestFailedFirstGetEndsFetch(t *testing.T) {
	fetchFails(t, &oneBadPart{size: 16 << 20, bad: "bytes=0-", answer: true}, 2)
}

func fetchFails(t *testing.T, client *oneBadPart, concurrency int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Fetch(t.Context(), client, Options{Bucket: "b", Key: "k.tar", MD5: "00", Dest: t.TempDir(),
			TaskName: "Task04_Hippocampus", Concurrency: concurrency, PartSize: 1 << 20})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errBadPart) {
			t.Errorf("err = %v, want the failed GET's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Fetch still running 20s after a GET failed")
	}
}
