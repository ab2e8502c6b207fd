package msd

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"
)

// fetchJob is one download of an object into a staging directory, from
// part first and archive offset start on (both 0 unless resumed).
type fetchJob struct {
	client      S3API
	obj         object
	concurrency int
	stage       string
	journalPath string
	log         io.Writer
	// checkpointEvery is how many archive bytes go by between journal
	// writes (at the next regular file's end).
	checkpointEvery int64

	resumed bool // the staging dir is an interrupted run's
	first   int
	start   int64
	hash    hash.Hash // the MD5 of parts [0, first)
	state   extractState
}

// stream runs the pipeline and returns the MD5 of the whole object:
//
//	GETs (concurrency at once, into recycled part buffers)
//	  → reassembly in order → MD5 (one goroutine: the floor)
//	                        → tar reader → file writes (another goroutine)
//	journal: records, off the critical path, how far extraction got.
//
// At most concurrency+2 parts are in memory: a part's buffer is reused once
// both the MD5 and the extractor are done with it.
func (r *fetchJob) stream(ctx context.Context) (string, int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := r.obj.parts()
	win := r.concurrency + 2
	window := make(chan struct{}, win)
	pool := newBufPool(r.obj.PartSize, win)
	free := func(c *chunk) { pool.put(c.data); <-window }
	jobs := make(chan int)
	ready := make([]chan *chunk, n)
	for i := range ready {
		ready[i] = make(chan *chunk, 1)
	}

	// The ranged GETs: the first that fails stops the others at once (their
	// context is the group's), then the whole stream. The stream's other
	// stages are no fan-out and share the stream's own cancel: the extractor
	// must keep draining after an error so the reassembler never blocks.
	gets, getCtx := errgroup.WithContext(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { // dispatch in order, at most a window ahead of reassembly
		// getCtx, not ctx: after a failed GET no more parts are handed out,
		// and closing jobs lets idle downloaders end, so gets.Wait returns.
		defer close(jobs)
		for i := r.first; i < n; i++ {
			select {
			case window <- struct{}{}:
			case <-getCtx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-getCtx.Done():
				return
			}
		}
	})
	for range r.concurrency {
		gets.Go(func() error {
			for i := range jobs {
				buf := pool.get()
				data, err := download(getCtx, r.client, r.obj, i, buf)
				if err != nil {
					pool.put(buf)
					return fmt.Errorf("download s3://%s/%s: %w", r.obj.Bucket, r.obj.Key, err)
				}
				c := &chunk{index: i, data: data, free: free}
				c.refs.Store(2)
				ready[i] <- c
			}
			return nil
		})
	}
	wg.Go(func() {
		if err := gets.Wait(); err != nil {
			cancel(err)
		}
	})

	snaps := newSnapshots(n, r.first, r.hash)
	toHash := make(chan *chunk, 2)
	wg.Go(func() {
		defer snaps.finish()
		for c := range toHash {
			r.hash.Write(c.data)
			snaps.set(c.index+1, r.hash)
			c.release()
		}
	})

	// The reassembler sets cut before closing toTar when it stops early, so
	// that the extractor never mistakes a truncated stream for a whole one.
	var cut error
	toTar := make(chan *chunk, 2)
	input := &chunkReader{in: toTar, skip: r.start - int64(r.first)*r.obj.PartSize, cut: &cut}
	checkpoints := make(chan journal, 1)
	var skipped int
	wg.Go(func() {
		defer close(checkpoints)
		skipped = r.extract(input, checkpoints, cancel)
	})
	var journalErr error
	wg.Go(func() { journalErr = r.journal(checkpoints, snaps) })

	for i := r.first; i < n; i++ {
		var c *chunk
		select {
		case c = <-ready[i]:
		case <-ctx.Done():
			cut = context.Cause(ctx)
		}
		if cut != nil {
			break
		}
		toHash <- c
		toTar <- c
	}
	close(toHash)
	close(toTar)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return "", skipped, err
	}
	if journalErr != nil {
		fmt.Fprintf(r.log, "fetch-msd: warning: %v (an interrupted fetch would start over)\n", journalErr)
	}
	return hex.EncodeToString(r.hash.Sum(nil)), skipped, nil
}

// extract runs the extractor over the stream, offering it to the journal at
// each regular file's end once checkpointEvery bytes went by, and once more
// when it stops for whatever reason.
func (r *fetchJob) extract(input *chunkReader, checkpoints chan<- journal, cancel context.CancelCauseFunc) int {
	defer input.drain()
	x, err := newExtractor(r.stage, r.state, r.resumed)
	if err != nil {
		cancel(fmt.Errorf("extract s3://%s/%s: %w", r.obj.Bucket, r.obj.Key, err))
		return r.state.Skipped
	}
	defer x.Close()
	last := r.start
	x.onBoundary = func(off int64) {
		if off-last < r.checkpointEvery {
			return
		}
		select { // never wait: the journal is not on the critical path
		case checkpoints <- journal{Offset: off, extractState: x.state()}:
			last = off
		default:
		}
	}
	err = x.run(input, r.start)
	if err != nil {
		cancel(fmt.Errorf("extract s3://%s/%s: %w", r.obj.Bucket, r.obj.Key, err))
	}
	input.drain()
	if x.boundary > last {
		// May wait for the journal writer to finish the previous one: it
		// does not depend on us, as the stream has been drained.
		checkpoints <- journal{Offset: x.boundary, extractState: x.state()}
	}
	return x.skipped
}

// journal writes the resume journal for each checkpoint, once the MD5 has
// reached the checkpoint's part.
func (r *fetchJob) journal(checkpoints <-chan journal, snaps *snapshots) error {
	boot := bootID()
	var firstErr error
	for j := range checkpoints {
		if boot == "" {
			continue // could not be trusted on resume anyway
		}
		j.Object, j.BootID = r.obj, boot
		j.Part = int(j.Offset / r.obj.PartSize)
		state, ok := snaps.wait(j.Part)
		if !ok {
			continue
		}
		j.MD5State = state
		if err := j.save(r.journalPath); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
