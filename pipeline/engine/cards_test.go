package engine

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestCardPoolFairAndDistinct(t *testing.T) {
	ctx := t.Context()
	p := newCardPool(4)
	first, err := p.acquire(ctx, 3)
	if err != nil || !slices.Equal(first, []int{0, 1, 2}) {
		t.Fatalf("first = %v, %v", first, err)
	}
	gotTwo, gotOne := make(chan []int, 1), make(chan []int, 1)
	go func() { c, _ := p.acquire(ctx, 2); gotTwo <- c }()
	waitQueued(t, p, 1)
	// One card is free, but a 1-card request must not overtake the waiting
	// 2-card one.
	go func() { c, _ := p.acquire(ctx, 1); gotOne <- c }()
	waitQueued(t, p, 2)
	select {
	case c := <-gotOne:
		t.Fatalf("granted %v while an earlier waiter waits", c)
	case <-time.After(10 * time.Millisecond):
	}
	p.release(first)
	a, b := <-gotTwo, <-gotOne
	if len(a) != 2 || len(b) != 1 || slices.Contains(a, b[0]) {
		t.Errorf("grants %v then %v: want 2 then 1 distinct cards", a, b)
	}
}

func TestCardPoolCancelledWaiterLetsOthersThrough(t *testing.T) {
	p := newCardPool(2)
	held, _ := p.acquire(t.Context(), 1)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := p.acquire(ctx, 2); errc <- err }()
	waitQueued(t, p, 1)
	got := make(chan []int, 1)
	go func() { c, _ := p.acquire(t.Context(), 1); got <- c }()
	waitQueued(t, p, 2)
	cancel()
	if err := <-errc; err == nil {
		t.Error("cancelled acquire returned no error")
	}
	if c := <-got; len(c) != 1 || c[0] == held[0] {
		t.Errorf("second waiter got %v (held %v)", c, held)
	}
}

func waitQueued(t *testing.T, p *cardPool, n int) {
	t.Helper()
	if !waitFor(t.Context(), func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.queue) == n }) {
		t.Fatalf("queue never reached %d waiters", n)
	}
}
