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
	nodes   map[uuid.UUID]*entry
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
		nodes:  map[uuid.UUID]*entry{},
		counts: map[decide.State]int{},
	}
}

// Len returns the number of nodes.
func (p *Partition) Len() int { return len(p.nodes) }

// Get returns the node's state or nil. The caller must not mutate it; use
// Put with a new state instead.
func (p *Partition) Get(id uuid.UUID) *decide.NodeState {
	if e := p.nodes[id]; e != nil {
		return e.st
	}
	return nil
}

// Count returns how many nodes are in state s.
func (p *Partition) Count(s decide.State) int { return p.counts[s] }

// Each calls fn for every node, in no particular order.
func (p *Partition) Each(fn func(*decide.NodeState)) {
	for _, e := range p.nodes {
		fn(e.st)
	}
}

// Put stores s as the node's state and re-indexes its deadline: a node has at
// most one pending deadline (while it awaits its ack, the earlier of its
// next accepted resend and its ack deadline; the liveness deadline while it
// is active), and none once its timeout marker is stamped, so a timeout can
// never be found twice.
func (p *Partition) Put(s *decide.NodeState) {
	e, ok := p.nodes[s.NodeID]
	if ok {
		old := e.st
		p.counts[old.State]--
		if old.State != decide.LivenessExpired && s.State == decide.LivenessExpired && s.LivenessTimeoutEmittedAt != nil {
			p.expired = append(p.expired, *s.LivenessTimeoutEmittedAt)
		}
	} else {
		e = &entry{idx: -1}
		p.nodes[s.NodeID] = e
	}
	e.st = s
	p.counts[s.State]++

	at, due := PendingDeadline(s)
	switch indexed := e.idx >= 0; {
	case due && indexed:
		e.at = at.UnixNano()
		heap.Fix(&p.index, e.idx)
	case due:
		e.at = at.UnixNano()
		heap.Push(&p.index, e)
	case indexed:
		heap.Remove(&p.index, e.idx)
	}
}

// PendingDeadline returns the deadline a tick must watch for s, if any.
func PendingDeadline(s *decide.NodeState) (time.Time, bool) {
	switch s.State {
	case decide.Accepted, decide.AwaitingAck:
		if s.AckDeadline != nil && s.AckTimeoutEmittedAt == nil {
			if r := decide.NextResend(s); r.Before(*s.AckDeadline) {
				return r, true
			}
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
	cutoff := now.UnixNano()
	for len(p.index) > 0 && p.index[0].at < cutoff {
		e := heap.Pop(&p.index).(*entry)
		due = append(due, e.st)
	}
	return due
}

// NextDeadline returns the earliest pending deadline, if any.
func (p *Partition) NextDeadline() (time.Time, bool) {
	if len(p.index) == 0 {
		return time.Time{}, false
	}
	return p.index[0].deadline(), true
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

// entry is one node: its state and, while it has a pending deadline, its
// place in the deadline index. The reducer holds one per node, so it is
// small: the deadline as Unix nanoseconds (what a tick compares), idx -1
// when not indexed.
type entry struct {
	st  *decide.NodeState
	at  int64
	idx int
}

func (e *entry) deadline() time.Time { return time.Unix(0, e.at).UTC() }

type deadlineHeap []*entry

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].at == h[j].at {
		// Tie-break on the id so the order of due nodes is deterministic.
		a, b := h[i].st.NodeID, h[j].st.NodeID
		return string(a[:]) < string(b[:])
	}
	return h[i].at < h[j].at
}
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *deadlineHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	e.idx = -1
	return e
}

// Delete removes a node (a snapshot tombstone).
func (p *Partition) Delete(id uuid.UUID) {
	e, ok := p.nodes[id]
	if !ok {
		return
	}
	p.counts[e.st.State]--
	delete(p.nodes, id)
	if e.idx >= 0 {
		heap.Remove(&p.index, e.idx)
	}
}
