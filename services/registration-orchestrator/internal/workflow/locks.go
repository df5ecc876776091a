package workflow

import (
	"errors"
	"sync"
)

// Two kinds of lock guard the workflow. On the batch and retry paths a
// partition lock is the only lock held across a network call. That is safe:
// it holds back only the work on its partition's nodes — the partition's
// records are consumed one batch after the other anyway, and a node's next
// record must see the outcome of its previous send to keep its order — and
// nobody waits for a second partition lock while holding one, so there is
// no cycle.
//
//   - A partition lock per partition number. Intents partition p and
//     results partition p hold the same nodes (the topics are
//     co-partitioned and keyed by node id), so whoever works on a node — a
//     batch of its partition of either topic, or the retry loop — holds
//     that partition's lock from its decision until the outcome of its
//     sends is recorded. The node's next record waits for that outcome;
//     the other partitions do not. The retry loop takes one partition lock at a
//     time, that of the aggregation it works on (Aggregation.partition).
//   - mu, the workflow-wide mutex over the aggregations, the maps and the
//     retry schedule, always taken after a partition lock. A batch and the
//     retry loop hold it only while they decide and record, and release it
//     across every send: a send takes milliseconds, or seconds with a slow
//     broker, and with mu held across it every partition's work queued
//     behind it (make bench at 100 registrations/s: routing waited 2.9 s
//     at p50; a retry pass holding it stalled every partition's handlers).
//     One uncommon path still sends with mu held: flushLocked, which a
//     batch calls for an aggregation with an intent to dead-letter or,
//     after a redelivery, other side effects pending.

// partitionLock returns the lock of partition number p.
func (w *Workflow) partitionLock(p int32) *sync.Mutex {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	l := w.plocks[p]
	if l == nil {
		l = &sync.Mutex{}
		w.plocks[p] = l
	}
	return l
}

// errDropped reports that an aggregation stopped being its node's while mu
// was released for a send: Revoke or Assign (which take mu but no partition
// lock) dropped or replaced it, and what was left to do for it is no longer
// this instance's job.
var errDropped = errors.New("aggregation dropped during the send")

// sendUnlocked runs send, a network call, with mu released, and returns
// errDropped if a is no longer its node's aggregation once mu is held
// again. The caller holds a's partition lock and mu; no record of a's node
// is handled meanwhile, so nothing else changes a.
func (w *Workflow) sendUnlocked(a *Aggregation, send func() error) error {
	w.mu.Unlock()
	err := send()
	w.mu.Lock()
	if w.aggs[a.NodeID] != a {
		return errDropped
	}
	return err
}
