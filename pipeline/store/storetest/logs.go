package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

func readLog(t *testing.T, ctx context.Context, s state.Store, run, name string, off int64) string {
	t.Helper()
	b, err := s.ReadLog(ctx, run, name, off)
	if err != nil {
		t.Fatalf("ReadLog %s@%d: %v", name, off, err)
	}
	return string(b)
}

func testLogs(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	_, err := s.ReadLog(ctx, "r", "train.1", 0)
	wantErr(t, "ReadLog of a missing log", err, state.ErrNotFound)

	parts := []string{"epoch 1\n", "epoch 2\n", "", "partial line", " done\n"}
	for _, p := range parts {
		if err := s.AppendLog(ctx, "r", "train.1", []byte(p)); err != nil {
			t.Fatalf("AppendLog: %v", err)
		}
	}
	// "train.10" shares a prefix with "train.1": it must stay separate.
	if err := s.AppendLog(ctx, "r", "train.10", []byte("other attempt\n")); err != nil {
		t.Fatal(err)
	}
	all := "epoch 1\nepoch 2\npartial line done\n"
	for off := int64(0); off <= int64(len(all))+3; off++ {
		want := ""
		if off < int64(len(all)) {
			want = all[off:]
		}
		if got := readLog(t, ctx, s, "r", "train.1", off); got != want {
			t.Fatalf("ReadLog at %d = %q, want %q", off, got, want)
		}
	}
	if got := readLog(t, ctx, s, "r", "train.10", 0); got != "other attempt\n" {
		t.Fatalf("train.10 = %q", got)
	}
	if _, err := s.ReadLog(ctx, "r", "train.1", -1); err == nil {
		t.Fatal("ReadLog with a negative offset: no error")
	}
}

func testLogFollow(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	chunks := make([][]byte, 60)
	for i := range chunks {
		c := make([]byte, 1+rng.IntN(300))
		for j := range c {
			c[j] = byte('a' + rng.IntN(26))
		}
		c[len(c)-1] = '\n'
		chunks[i] = c
		want.Write(c)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	got := make([][]byte, 3)
	errs := make([]error, 3)
	for r := range got {
		wg.Go(func() {
			var off int64
			for {
				finished := false
				select {
				case <-done:
					finished = true // one more read after the writer stopped
				default:
				}
				b, err := s.ReadLog(ctx, "r", "follow.1", off)
				switch {
				case errors.Is(err, state.ErrNotFound) && !finished:
				case err != nil:
					errs[r] = err
					return
				default:
					got[r] = append(got[r], b...)
					off += int64(len(b))
				}
				if finished {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	for _, c := range chunks {
		if err := s.AppendLog(ctx, "r", "follow.1", c); err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("AppendLog: %v", err)
		}
	}
	close(done)
	wg.Wait()
	for r := range got {
		if errs[r] != nil {
			t.Fatalf("reader %d: %v", r, errs[r])
		}
		if !bytes.Equal(got[r], want.Bytes()) {
			t.Fatalf("reader %d followed %d bytes that differ from the %d appended", r, len(got[r]), want.Len())
		}
	}
}

func testLogConcurrentAppend(t *testing.T, s state.Store) {
	ctx := ctxFor(t)
	const writers, lines = 4, 15
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				line := fmt.Appendf(nil, "writer %d line %d %s\n", w, i, bytes.Repeat([]byte{'x'}, 10*i))
				if err := s.AppendLog(ctx, "r", "shared", line); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	got := readLog(t, ctx, s, "r", "shared", 0)
	seen := map[string]bool{}
	for l := range bytes.Lines([]byte(got)) {
		seen[string(l)] = true
	}
	for w := range writers {
		for i := range lines {
			l := fmt.Sprintf("writer %d line %d %s\n", w, i, bytes.Repeat([]byte{'x'}, 10*i))
			if !seen[l] {
				t.Fatalf("line %q missing or torn in the log:\n%s", l, got)
			}
		}
	}
	if len(seen) != writers*lines {
		t.Fatalf("log has %d distinct lines, want %d", len(seen), writers*lines)
	}
}
