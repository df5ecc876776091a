package antientropy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A pass's writes run at most parallel at once, their reports add up, and
// the first error stops the pass: nothing more starts, and wait returns it.
func TestWrites(t *testing.T) {
	stop := errors.New("breaker open")
	tests := []struct {
		name     string
		parallel int
		failAt   int // the write that returns stop (-1: none)
		writes   int
		wantMax  int32
	}{
		{name: "bounded", parallel: 4, failAt: -1, writes: 40, wantMax: 4},
		{name: "one at a time", parallel: 1, failAt: -1, writes: 10, wantMax: 1},
		{name: "stops", parallel: 1, failAt: 3, writes: 10, wantMax: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWrites(context.Background(), tt.parallel)
			var running, most atomic.Int32
			started := 0
			for i := range tt.writes {
				ok := w.start(func(rep *Report) error {
					n := running.Add(1)
					defer running.Add(-1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(2 * time.Millisecond)
					rep.Missing++
					if i == tt.failAt {
						rep.Failed++
						return stop
					}
					return nil
				})
				if !ok {
					break
				}
				started++
			}
			rep, err := w.wait()
			if tt.failAt < 0 {
				if err != nil || started != tt.writes || rep.Missing != tt.writes {
					t.Fatalf("started %d, report %+v, error %v", started, rep, err)
				}
			} else if !errors.Is(err, stop) || started != tt.failAt+1 || rep.Failed != 1 || rep.Missing != started {
				t.Fatalf("started %d, report %+v, error %v: want a stop after write %d", started, rep, err, tt.failAt)
			}
			if m := most.Load(); m != tt.wantMax {
				t.Fatalf("%d writes at once, want %d", m, tt.wantMax)
			}
		})
	}
}

// A pass whose context ends starts nothing more and says so.
func TestWritesCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := newWrites(ctx, 2)
	for range 5 {
		w.start(func(*Report) error { return nil })
	}
	if _, err := w.wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
