package msd

import (
	"hash"
	"io"
	"sync"
)

// chunkReader reads the in-order parts straight out of their buffers (no
// pipe, no second copy), releasing each part when it has been read.
type chunkReader struct {
	in   <-chan *chunk
	cur  *chunk
	off  int
	skip int64  // bytes of the first part before the resume offset
	cut  *error // why the stream stopped early; read after in is closed
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.off == len(r.cur.data) {
		if r.cur != nil {
			r.cur.release()
			r.cur = nil
		}
		c, ok := <-r.in
		if !ok {
			if *r.cut != nil {
				return 0, *r.cut
			}
			return 0, io.EOF
		}
		r.cur, r.off = c, 0
		if r.skip > 0 {
			s := min(r.skip, int64(len(c.data)))
			r.off, r.skip = int(s), r.skip-s
		}
	}
	n := copy(p, r.cur.data[r.off:])
	r.off += n
	return n, nil
}

// drain releases every part still to come, so that the reassembler is
// never left waiting for a reader that stopped.
func (r *chunkReader) drain() {
	if r.cur != nil {
		r.cur.release()
		r.cur = nil
	}
	for c := range r.in {
		c.release()
	}
}

// snapshots holds the MD5 state after each part, for the journal: it may
// lag behind the extractor or run ahead of it.
type snapshots struct {
	mu    sync.Mutex
	cond  *sync.Cond
	state [][]byte // state[i]: after parts [0, i)
	done  bool
}

func newSnapshots(parts, first int, h hash.Hash) *snapshots {
	s := &snapshots{state: make([][]byte, parts+1)}
	s.cond = sync.NewCond(&s.mu)
	s.set(first, h)
	return s
}

func (s *snapshots) set(i int, h hash.Hash) {
	b, err := md5State(h)
	if err != nil {
		return // no journal at this part: a resume would start further back
	}
	s.mu.Lock()
	s.state[i] = b
	s.mu.Unlock()
	s.cond.Broadcast()
}

// finish says no more snapshots come.
func (s *snapshots) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

// wait returns the state after parts [0, i), waiting for the MD5 to get there.
func (s *snapshots) wait(i int) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.state[i] == nil && !s.done {
		s.cond.Wait()
	}
	return s.state[i], s.state[i] != nil
}
