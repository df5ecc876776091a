// Package load offers the fleet work: registrations of simulated nodes
// through pkg/node (at a fixed rate, or with a fixed number in flight) and
// heartbeats of a pre-registered fleet at a controlled rate.
package load

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/observe"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
)

// Registrar starts simulated nodes on a node.Fleet, taking identities from
// a plan in order, and tells the tracker when each introspection starts.
type Registrar struct {
	Fleet   *node.Fleet
	Tracker *observe.Tracker
	Plan    []sim.Planned
	Log     *slog.Logger

	mu   sync.Mutex
	next int
	wg   sync.WaitGroup
}

func (r *Registrar) take() (sim.Planned, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next >= len(r.Plan) {
		return sim.Planned{}, false
	}
	p := r.Plan[r.next]
	r.next++
	return p, true
}

// start introspects one node without waiting for the broker: Fleet.Add
// waits for the broker's ack of the introspection, and the offered rate must
// not depend on that.
func (r *Registrar) start(ctx context.Context) (uuid.UUID, bool) {
	p, ok := r.take()
	if !ok {
		return uuid.Nil, false
	}
	r.Tracker.Introduce(p.Identity.NodeID, time.Now())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.Fleet.Add(ctx, p.Identity, p.Options); err != nil && ctx.Err() == nil {
			r.Log.Warn("bench: introspection failed", "node_id", p.Identity.NodeID, "error", err)
		}
	}()
	return p.Identity.NodeID, true
}

// Wait waits for every introspection started so far to be published.
func (r *Registrar) Wait() { r.wg.Wait() }

// Remaining is how many planned nodes have not been started.
func (r *Registrar) Remaining() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Plan) - r.next
}

// OpenLoop starts nodes at rate per second, evenly spaced, for d, whatever
// happens to the earlier ones, and returns their ids.
func (r *Registrar) OpenLoop(ctx context.Context, rate float64, d time.Duration) []uuid.UUID {
	gap := time.Duration(float64(time.Second) / rate)
	n := int(rate * d.Seconds())
	ids := make([]uuid.UUID, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		if w := time.Until(start.Add(time.Duration(i) * gap)); w > 0 {
			select {
			case <-ctx.Done():
				return ids
			case <-time.After(w):
			}
		}
		id, ok := r.start(ctx)
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	return ids
}

// ClosedLoop keeps window registrations in flight for d: a node that
// became ACTIVE in both backends makes room for the next one (a node that
// takes longer than giveUp is written off, so a lost node cannot shrink the
// window). It returns the ids it started.
func (r *Registrar) ClosedLoop(ctx context.Context, window int, d, giveUp time.Duration) []uuid.UUID {
	slots := make(chan struct{}, window)
	var mu sync.Mutex
	inFlight := map[uuid.UUID]time.Time{}
	release := func(id uuid.UUID) {
		mu.Lock()
		_, ok := inFlight[id]
		delete(inFlight, id)
		mu.Unlock()
		if ok {
			<-slots
		}
	}
	r.Tracker.OnDone(func(id uuid.UUID, _ observe.Timeline) { release(id) })
	defer r.Tracker.OnDone(nil)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	go func() { // write off nodes stuck longer than giveUp
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				var stuck []uuid.UUID
				mu.Lock()
				for id, at := range inFlight {
					if now.Sub(at) > giveUp {
						stuck = append(stuck, id)
					}
				}
				mu.Unlock()
				for _, id := range stuck {
					release(id)
				}
			}
		}
	}()
	var ids []uuid.UUID
	for {
		select {
		case <-ctx.Done():
			return ids
		case slots <- struct{}{}:
		}
		// Register before starting: the node may complete before start
		// returns.
		p, ok := r.peek()
		if !ok {
			<-slots
			return ids
		}
		mu.Lock()
		inFlight[p] = time.Now()
		mu.Unlock()
		id, ok := r.start(ctx)
		if !ok {
			return ids
		}
		ids = append(ids, id)
	}
}

func (r *Registrar) peek() (uuid.UUID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next >= len(r.Plan) {
		return uuid.Nil, false
	}
	return r.Plan[r.next].Identity.NodeID, true
}
