// Package state keeps the reducer's node states for the partitions one
// instance owns, with a deadline index so that a tick finds the nodes that are
// due in O(due · log n) instead of scanning every node.
package state

import (
	"container/heap"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// Partition holds the nodes of one input partition. It is not safe for
// concurrent use: the reducer handles one partition on one goroutine.
type Partition struct {
	ID      int32
	nodes   map[uuid.UUID]*decide.NodeState
	slots   map[uuid.UUID]*slot
	index   deadlineHeap
	counts  map[decide.State]int
	expired []time.Time // liveness expirations, oldest first, for mass-expiry accounting
	// Held reports whether mass-expiry protection is holding expirations.
	Held bool
}

// NewPartition returns an empty partition.
func NewPartition(id int32) *Partition {
	return &Partition{
		ID:     id,
		nodes:  map[uuid.UUID]*decide.NodeState{},
		slots:  map[uuid.UUID]*slot{},
		counts: map[decide.State]int{},
	}
}

// Len returns the number of nodes.
func (p *Partition) Len() int { return len(p.nodes) }

// Get returns the node's state or nil. The caller must not mutate it; use
// Put with a new state instead.
func (p *Partition) Get(id uuid.UUID) *decide.NodeState { return p.nodes[id] }

// Count returns how many nodes are in state s.
func (p *Partition) Count(s decide.State) int { return p.counts[s] }

// Each calls fn for every node, in no particular order.
func (p *Partition) Each(fn func(*decide.NodeState)) {
	for _, n := range p.nodes {
		fn(n)
	}
}

// Put stores s as the node's state and re-indexes its deadline: a node has at
// most one pending deadline (the ack deadline while it awaits its ack, the
// liveness deadline while it is active), and none once its timeout marker is
// stamped, so a timeout can never be found twice.
func (p *Partition) Put(s *decide.NodeState) {
	if old, ok := p.nodes[s.NodeID]; ok {
		p.counts[old.State]--
		if old.State != decide.LivenessExpired && s.State == decide.LivenessExpired && s.LivenessTimeoutEmittedAt != nil {
			p.expired = append(p.expired, *s.LivenessTimeoutEmittedAt)
		}
	}
	p.nodes[s.NodeID] = s
	p.counts[s.State]++

	at, ok := PendingDeadline(s)
	sl, indexed := p.slots[s.NodeID]
	switch {
	case ok && indexed:
		sl.at = at
		heap.Fix(&p.index, sl.idx)
	case ok:
		sl = &slot{at: at, id: s.NodeID}
		p.slots[s.NodeID] = sl
		heap.Push(&p.index, sl)
	case indexed:
		heap.Remove(&p.index, sl.idx)
		delete(p.slots, s.NodeID)
	}
}

// PendingDeadline returns the deadline a tick must watch for s, if any.
func PendingDeadline(s *decide.NodeState) (time.Time, bool) {
	switch s.State {
	case decide.Accepted, decide.AwaitingAck:
		if s.AckDeadline != nil && s.AckTimeoutEmittedAt == nil {
			return *s.AckDeadline, true
		}
	case decide.Active:
		if s.LivenessDeadline != nil && s.LivenessTimeoutEmittedAt == nil {
			return *s.LivenessDeadline, true
		}
	}
	return time.Time{}, false
}

// PopDue removes from the index and returns every node whose pending deadline
// is strictly before now (spec: "now > deadline"), earliest first. The caller
// decides each and must Put the resulting state back; a node that is still
// due afterwards (a held expiry) is then indexed again.
func (p *Partition) PopDue(now time.Time) []*decide.NodeState {
	var due []*decide.NodeState
	for len(p.index) > 0 && p.index[0].at.Before(now) {
		sl := heap.Pop(&p.index).(*slot)
		delete(p.slots, sl.id)
		due = append(due, p.nodes[sl.id])
	}
	return due
}

// NextDeadline returns the earliest pending deadline, if any.
func (p *Partition) NextDeadline() (time.Time, bool) {
	if len(p.index) == 0 {
		return time.Time{}, false
	}
	return p.index[0].at, true
}

// RecentExpirations returns how many liveness expirations happened after
// since, dropping older ones from the accounting.
func (p *Partition) RecentExpirations(since time.Time) int {
	i := 0
	for i < len(p.expired) && !p.expired[i].After(since) {
		i++
	}
	p.expired = p.expired[i:]
	return len(p.expired)
}

type slot struct {
	at  time.Time
	id  uuid.UUID
	idx int
}

type deadlineHeap []*slot

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		// Tie-break on the id so the order of due nodes is deterministic.
		return string(h[i].id[:]) < string(h[j].id[:])
	}
	return h[i].at.Before(h[j].at)
}
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *deadlineHeap) Push(x any) {
	s := x.(*slot)
	s.idx = len(*h)
	*h = append(*h, s)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	n := len(old)
	s := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	s.idx = -1
	return s
}

// Delete removes a node (a snapshot tombstone).
func (p *Partition) Delete(id uuid.UUID) {
	old, ok := p.nodes[id]
	if !ok {
		return
	}
	p.counts[old.State]--
	delete(p.nodes, id)
	if sl, ok := p.slots[id]; ok {
		heap.Remove(&p.index, sl.idx)
		delete(p.slots, id)
	}
}
