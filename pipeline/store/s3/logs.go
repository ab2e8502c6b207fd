package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/pipeline/state"
)

// logCache remembers the chunks of one log known to this process: chunk i
// has sequence number i (chunks are contiguous from 0), so offsets can be
// mapped to chunks without listing the whole log again.
type logCache struct {
	mu    sync.Mutex
	sizes []int64 // sizes[i]: size of chunk i
	next  int     // sequence number the next AppendLog tries first
}

const seqDigits = 10

func (s *Store) chunkPrefix(runID, name string) string {
	return s.runKey(runID) + logsFolder + "/" + name + "/"
}

func chunkKey(prefix string, seq int) string {
	return fmt.Sprintf("%s%0*d", prefix, seqDigits, seq)
}

func (s *Store) cache(runID, name string) *logCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := runID + "/" + name
	c := s.logs[k]
	if c == nil {
		c = &logCache{}
		s.logs[k] = c
	}
	return c
}

// refresh lists the chunks after the last known one. Caller holds c.mu.
func (s *Store) refresh(ctx context.Context, c *logCache, prefix string) error {
	in := &s3sdk.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	if n := len(c.sizes); n > 0 {
		in.StartAfter = aws.String(chunkKey(prefix, n-1))
	}
	p := s3sdk.NewListObjectsV2Paginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			seq, err := strconv.Atoi(aws.ToString(o.Key)[len(prefix):])
			if err != nil || seq != len(c.sizes) {
				// A gap: a chunk being written by a concurrent appender.
				// Stop here; the next refresh picks up from the gap.
				return nil
			}
			c.sizes = append(c.sizes, aws.ToInt64(o.Size))
		}
	}
	c.next = max(c.next, len(c.sizes))
	return nil
}

// AppendLog implements state.Store: the bytes become the next chunk.
func (s *Store) AppendLog(ctx context.Context, runID, name string, p []byte) error {
	if err := state.CheckName("run id", runID); err != nil {
		return err
	}
	if err := state.CheckName("log name", name); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	c := s.cache(runID, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := s.chunkPrefix(runID, name)
	for try := 0; ; try++ {
		seq := c.next
		key := chunkKey(prefix, seq)
		_, outcome, err := s.condPut(ctx, key, p, "", nil)
		if err != nil {
			return fmt.Errorf("append to log %s of run %s in %s: %w", name, runID, s, err)
		}
		if outcome == "ok" {
			c.next = seq + 1
			if seq == len(c.sizes) {
				c.sizes = append(c.sizes, int64(len(p)))
			}
			return nil
		}
		// The sequence number is taken: by our own retried attempt (then the
		// chunk holds exactly p) or by another appender.
		cur, _, found, err := s.get(ctx, key)
		if err != nil {
			return fmt.Errorf("append to log %s of run %s in %s: %w", name, runID, s, err)
		}
		if found && bytes.Equal(cur, p) {
			c.next = seq + 1
			return nil
		}
		if try >= 50 {
			return fmt.Errorf("append to log %s of run %s in %s: no free chunk after %d tries", name, runID, s, try)
		}
		if err := s.refresh(ctx, c, prefix); err != nil {
			return fmt.Errorf("append to log %s of run %s in %s: %w", name, runID, s, err)
		}
		if c.next <= seq {
			c.next = seq + 1
		}
	}
}

// ReadLog implements state.Store.
func (s *Store) ReadLog(ctx context.Context, runID, name string, offset int64) ([]byte, error) {
	if err := state.CheckName("run id", runID); err != nil {
		return nil, err
	}
	if err := state.CheckName("log name", name); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("read log %s of run %s: negative offset %d", name, runID, offset)
	}
	c := s.cache(runID, name)
	c.mu.Lock()
	prefix := s.chunkPrefix(runID, name)
	if err := s.refresh(ctx, c, prefix); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, err)
	}
	sizes := c.sizes[:len(c.sizes):len(c.sizes)]
	c.mu.Unlock()
	if len(sizes) == 0 {
		return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, state.ErrNotFound)
	}
	out := []byte{}
	var start int64
	for seq, size := range sizes {
		end := start + size
		if end > offset {
			in := &s3sdk.GetObjectInput{Bucket: &s.bucket, Key: aws.String(chunkKey(prefix, seq))}
			skip := max(offset-start, 0)
			if skip > 0 {
				in.Range = aws.String(fmt.Sprintf("bytes=%d-", skip))
			}
			b, err := s.getBytes(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("read log %s of run %s from %s: %w", name, runID, s, err)
			}
			out = append(out, b...)
		}
		start = end
	}
	return out, nil
}

func (s *Store) getBytes(ctx context.Context, in *s3sdk.GetObjectInput) ([]byte, error) {
	o, err := s.api.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer o.Body.Close()
	return io.ReadAll(o.Body)
}
