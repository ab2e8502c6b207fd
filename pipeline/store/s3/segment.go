package s3

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
)

// Segments make loads cheap. Between two snapshots a run may have thousands
// of slots (a snapshot is taken when the records outweigh the last one), and
// reading each with its own GET made `gpipe status` of a big run mid-way take
// seconds at S3's latency. So the writer, which knows what it wrote, also
// stores every segmentSlots aligned slots' records as one object:
//
//	<run>/journal/<journal-id>/seg/<k>   slots k*64 .. k*64+63
//
// A segment is derived data: slots are immutable once created, and a writer
// puts into a segment only slots it created itself or read, so any copy of
// a segment is right. It is written after its last slot, unconditionally and
// best effort; a load uses the segments it finds and GETs the slots no segment
// holds. Body: a header line "gpipe-segment 1 <first slot>", then one line
// per slot from the first: "r <record>" or "-" for a slot the segment leaves
// out (a snapshot, or a slot its writer did not see). Records hold no
// newline (state.Appender).
const (
	segmentSlots  = 64
	segmentFolder = "seg"
	segmentHeader = "gpipe-segment 1 "
)

// tail is what this Store knows of the slots of a run's current segment:
// entries[i] is slot first+i, nil when left out.
type tail struct {
	jid     string
	first   int64
	entries [][]byte
}

func (s *Store) segmentKey(runID, jid string, k int64) string {
	return fmt.Sprintf("%s%s/%0*d", s.journalPrefix(runID, jid), segmentFolder, seqDigits, k)
}

// noteSlot records that slot n of the run's journal holds rec (nil: a
// snapshot) and writes the segment that slot completes.
func (s *Store) noteSlot(ctx context.Context, runID, jid string, n int64, rec []byte) {
	s.mu.Lock()
	t := s.tails[runID]
	if t == nil || t.jid != jid || t.first+int64(len(t.entries)) != n {
		t = &tail{jid: jid, first: n}
		s.tails[runID] = t
	}
	t.entries = append(t.entries, bytes.Clone(rec)) // the caller may reuse rec
	end := t.first + int64(len(t.entries))
	var body []byte
	k := end/segmentSlots - 1
	if end%segmentSlots == 0 {
		body = segmentBody(k*segmentSlots, t)
		t.first, t.entries = end, nil
	}
	s.mu.Unlock()
	if body == nil {
		return
	}
	key := s.segmentKey(runID, jid, k)
	// Best effort: without it a load GETs the slots.
	_, _ = s.api.PutObject(ctx, &s3sdk.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
	})
}

// segmentBody encodes the slots from start to t's last; nil if it holds no
// record.
func segmentBody(start int64, t *tail) []byte {
	b := []byte(segmentHeader + strconv.FormatInt(start, 10) + "\n")
	any := false
	for n := start; n < t.first+int64(len(t.entries)); n++ {
		var rec []byte
		if n >= t.first {
			rec = t.entries[n-t.first]
		}
		if rec == nil {
			b = append(b, "-\n"...)
			continue
		}
		any = true
		b = append(append(append(b, "r "...), rec...), '\n')
	}
	if !any {
		return nil
	}
	return b
}

// seedTail lets a Store that loaded a journal up to slot end (exclusive)
// write the segment its next Appends complete. slots are those from first.
func (s *Store) seedTail(runID, jid string, first int64, slots []slot) {
	end := first + int64(len(slots))
	start := max(first, end/segmentSlots*segmentSlots)
	t := &tail{jid: jid, first: start}
	for _, sl := range slots[start-first:] {
		var rec []byte
		if sl.kind != kindSnapshot {
			rec = sl.body
		}
		t.entries = append(t.entries, rec)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.tails[runID]; old != nil && old.jid == jid && old.first+int64(len(old.entries)) >= end {
		return // this Store already knows as much
	}
	s.tails[runID] = t
}

// parseSegment returns the records of a segment by slot number.
func parseSegment(b []byte) (map[int64][]byte, bool) {
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(segmentHeader)) {
		return nil, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(line[len(segmentHeader):])), 10, 64)
	if err != nil || n < 0 {
		return nil, false
	}
	recs := map[int64][]byte{}
	for len(rest) > 0 {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		switch {
		case !ok:
			return nil, false
		case bytes.Equal(line, []byte("-")):
		case bytes.HasPrefix(line, []byte("r ")):
			recs[n] = line[2:]
		default:
			return nil, false
		}
		n++
	}
	return recs, true
}

// readSegments returns the records that the segments overlapping slots
// from..end-1 hold, by slot number. Best effort: a segment that cannot be
// listed, read or parsed is left out, and the slots are read instead.
func (s *Store) readSegments(ctx context.Context, runID, jid string, from, end int64) map[int64][]byte {
	prefix := s.journalPrefix(runID, jid) + segmentFolder + "/"
	in := &s3sdk.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	if k := from / segmentSlots; k > 0 {
		in.StartAfter = aws.String(s.segmentKey(runID, jid, k-1))
	}
	var keys []string
	p := s3sdk.NewListObjectsV2Paginator(s.api, in)
list:
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil
		}
		for _, o := range page.Contents {
			k, err := strconv.ParseInt(aws.ToString(o.Key)[len(prefix):], 10, 64)
			if err != nil {
				continue
			}
			if k*segmentSlots >= end {
				break list
			}
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	recs := map[int64][]byte{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadParallel)
	for _, key := range keys {
		g.Go(func() error {
			b, _, found, err := s.get(gctx, key)
			if err != nil || !found {
				return nil
			}
			seg, ok := parseSegment(b)
			if !ok {
				return nil
			}
			mu.Lock()
			for n, rec := range seg {
				if n >= from && n < end {
					recs[n] = rec
				}
			}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no error
	return recs
}
