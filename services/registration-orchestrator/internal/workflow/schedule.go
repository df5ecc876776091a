package workflow

import (
	"container/heap"
	"time"

	"github.com/google/uuid"
)

// The retry loop wakes for the aggregations that owe it something — a
// re-send that is due, a delivery whose step timeout ran out, a flush that
// failed — and never walks the others: with thousands of attempts in flight
// a pass over all of them on every result held the workflow's lock for
// most of the orchestrator's CPU (a make bench profile: 76 % in
// retryPass/Aggregation.Due).

// wakeup is a time the retry loop owes one node's aggregation a look.
type wakeup struct {
	at   time.Time
	node uuid.UUID
}

// wakeups is a min-heap of wakeup by time. Entries are not removed when an
// aggregation changes or ends: a stale one costs a map lookup when it is
// popped, and the aggregation's current deadlines are what count.
type wakeups []wakeup

func (h wakeups) Len() int           { return len(h) }
func (h wakeups) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeups) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeups) Push(x any)        { *h = append(*h, x.(wakeup)) }
func (h *wakeups) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// nextDeadline is the earliest of a's scheduled re-sends and step timeouts,
// or the zero time.
func (w *Workflow) nextDeadline(a *Aggregation) time.Time {
	d := a.NextDue()
	if t := a.NextTimeout(w.cfg.StepTimeout); !t.IsZero() && (d.IsZero() || t.Before(d)) {
		d = t
	}
	return d
}

// scheduleLocked makes sure the retry loop looks at a by its next deadline
// (not before notBefore), waking the loop if that is sooner than it planned.
// a.wakeAt remembers the earliest wake-up queued for a, so an aggregation
// whose deadline did not move queues nothing new. w.mu is held.
func (w *Workflow) scheduleLocked(a *Aggregation, notBefore time.Time) {
	d := w.nextDeadline(a)
	if d.IsZero() {
		return
	}
	if d.Before(notBefore) {
		d = notBefore
	}
	if !a.wakeAt.IsZero() && !a.wakeAt.After(d) {
		return // an earlier or equal wake-up is queued already
	}
	a.wakeAt = d
	heap.Push(&w.sched, wakeup{at: d, node: a.NodeID})
	w.wakeLocked(d)
}

// laterLocked asks the retry loop to carry out node's pending side effects
// again shortly (a send or a flush failed). w.mu is held.
func (w *Workflow) laterLocked(node uuid.UUID, now time.Time) {
	w.unflushed[node] = true
	w.wakeLocked(now.Add(retryLater))
}

// wakeLocked pokes the retry loop if at is before the wake-up it planned.
func (w *Workflow) wakeLocked(at time.Time) {
	if w.wakeAt.IsZero() || at.Before(w.wakeAt) {
		w.wakeAt = at
		w.poke()
	}
}

// resetScheduleLocked forgets every queued wake-up (new assignment or
// revocation) and queues those of the aggregations held now.
func (w *Workflow) resetScheduleLocked() {
	w.sched, w.unflushed = nil, map[uuid.UUID]bool{}
	for _, a := range w.aggs {
		a.wakeAt = time.Time{}
		w.scheduleLocked(a, time.Time{})
	}
	w.poke()
}

// dueLocked pops the aggregations whose wake-up is due at now, and those
// whose side effects must be carried out again, each once.
func (w *Workflow) dueLocked(now time.Time) []*Aggregation {
	var out []*Aggregation
	seen := map[uuid.UUID]bool{}
	take := func(node uuid.UUID) {
		if a := w.aggs[node]; a != nil && !seen[node] {
			seen[node] = true
			out = append(out, a)
		}
	}
	for w.sched.Len() > 0 && !w.sched[0].at.After(now) {
		e := heap.Pop(&w.sched).(wakeup)
		if a := w.aggs[e.node]; a != nil && a.wakeAt.Equal(e.at) {
			a.wakeAt = time.Time{}
		}
		take(e.node)
	}
	for node := range w.unflushed {
		take(node)
	}
	clear(w.unflushed)
	return out
}
