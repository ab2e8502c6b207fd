package engine

import (
	"context"
	"sync"
)

// cardPool hands out the accelerator card indices of one host. Waiters are
// served strictly first come, first served: a step wanting 8 cards is not
// starved by a stream of 1-card steps slipping past it.
type cardPool struct {
	mu    sync.Mutex
	free  []bool // free[i]: card i is free
	nfree int
	queue []*cardWaiter
}

type cardWaiter struct {
	n     int
	ready chan []int // receives the granted indices, exactly once
}

func newCardPool(n int) *cardPool {
	free := make([]bool, n)
	for i := range free {
		free[i] = true
	}
	return &cardPool{free: free, nfree: n}
}

// acquire waits for n distinct cards, lowest indices first. The caller has
// checked n <= the host's cards.
func (p *cardPool) acquire(ctx context.Context, n int) ([]int, error) {
	w := &cardWaiter{n: n, ready: make(chan []int, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, w)
	p.grantLocked()
	p.mu.Unlock()
	select {
	case cards := <-w.ready:
		return cards, nil
	case <-ctx.Done():
		p.mu.Lock()
		for i, q := range p.queue {
			if q == w {
				p.queue = append(p.queue[:i], p.queue[i+1:]...)
				break
			}
		}
		// Leaving the head of the queue may let the next waiter through.
		p.grantLocked()
		p.mu.Unlock()
		select {
		case cards := <-w.ready: // granted while we were giving up
			p.release(cards)
		default:
		}
		return nil, context.Cause(ctx)
	}
}

func (p *cardPool) grantLocked() {
	for len(p.queue) > 0 && p.queue[0].n <= p.nfree {
		w := p.queue[0]
		p.queue = p.queue[1:]
		cards := make([]int, 0, w.n)
		for i := 0; i < len(p.free) && len(cards) < w.n; i++ {
			if p.free[i] {
				p.free[i] = false
				cards = append(cards, i)
			}
		}
		p.nfree -= w.n
		w.ready <- cards
	}
}

func (p *cardPool) release(cards []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cards {
		p.free[c] = true
	}
	p.nfree += len(cards)
	p.grantLocked()
}
