package antientropy

import (
	"context"
	"sync"
)

// writes runs the writes of one pass up to parallel at once. One after
// another, a pass that finds thousands of nodes missing (Consul lost its
// catalog, or came back after an outage) took a Consul commit per node;
// at once, the catalog mode's group commit gathers them into shared
// transactions. Each write counts into a report of its own, added to the
// pass's when it returns.
type writes struct {
	ctx   context.Context
	slots chan struct{}
	wg    sync.WaitGroup

	mu  sync.Mutex
	rep Report
	err error // the first error that stops the pass
}

func newWrites(ctx context.Context, parallel int) *writes {
	return &writes{ctx: ctx, slots: make(chan struct{}, max(parallel, 1))}
}

// start runs fn once a slot is free. It returns false, starting nothing,
// once the pass has stopped: a write returned an error (stopPass) or ctx
// ended.
func (w *writes) start(fn func(rep *Report) error) bool {
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		return false
	}
	w.mu.Lock()
	stopped := w.err != nil
	w.mu.Unlock()
	if stopped {
		<-w.slots
		return false
	}
	w.wg.Go(func() {
		defer func() { <-w.slots }()
		var rep Report
		err := fn(&rep)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.rep.add(rep)
		if err != nil && w.err == nil {
			w.err = err
		}
	})
	return true
}

// wait waits for the started writes and returns what they counted and the
// error that stopped the pass (ctx's when it ended).
func (w *writes) wait() (Report, error) {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.ctx.Err()
	}
	return w.rep, w.err
}

func (r *Report) add(o Report) {
	r.Desired += o.Desired
	r.Present += o.Present
	r.Missing += o.Missing
	r.Changed += o.Changed
	r.Orphans += o.Orphans
	r.Skipped += o.Skipped
	r.Failed += o.Failed
}
