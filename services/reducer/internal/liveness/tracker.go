// Package liveness keeps, for one reducer partition, what heartbeats changed
// since each node's last registration snapshot, and writes it as a
// checkpoint: a few compacted records per partition, at most about once a
// second, instead of a snapshot per heartbeat.
//
// A heartbeat moves only a node's liveness: its last heartbeat, its liveness
// deadline and the sequence of the projection update it emits. Those three
// fields (with the registration attempt they belong to) are all a Tracker
// holds per node. Every other change writes the node's snapshot, which then
// supersedes the node's entry here.
//
// The nodes are spread over buckets by node id; a checkpoint rewrites only
// the buckets whose nodes moved, each whole, so the compacted topic holds the
// latest of every bucket and nothing older is needed. Every bucket record
// carries the input offset it covers; the restore replays the heartbeats of
// the reducer input from the newest of those on, so a checkpoint that is late
// or lost in a crash only lengthens that replay. See docs/reducer.md.
package liveness

import (
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// DefaultPerBucket is how many nodes a bucket holds before the partition is
// split into more buckets: about 60 bytes a node, so a bucket stays near
// 250 KB, well under Kafka's default 1 MB record limit.
const DefaultPerBucket = 4096

// Entry is one node's liveness as its latest heartbeat left it.
type Entry struct {
	AttemptID        uuid.UUID
	Sequence         int64
	LastHeartbeatAt  time.Time
	LivenessDeadline time.Time
}

// Tracker holds the liveness moves of one partition. It is not safe for
// concurrent use: like the partition's state, it belongs to the partition's
// goroutine.
type Tracker struct {
	partition int32
	perBucket int
	buckets   uint32
	// oldBuckets is a bucket count whose records the next checkpoint must
	// delete (tombstones), after the partition was split; 0 when none.
	oldBuckets uint32
	nodes      map[uuid.UUID]Entry
	dirty      map[uint32]struct{}
	// last is when the last checkpoint was written, covered the input
	// offset it reached (-1 before the first).
	last    time.Time
	covered int64
}

// NewTracker returns an empty tracker for partition p. perBucket <= 0 means
// DefaultPerBucket.
func NewTracker(p int32, perBucket int) *Tracker {
	if perBucket <= 0 {
		perBucket = DefaultPerBucket
	}
	return &Tracker{partition: p, perBucket: perBucket, buckets: 1, nodes: map[uuid.UUID]Entry{}, dirty: map[uint32]struct{}{}, covered: -1}
}

// Partition returns the partition the tracker belongs to.
func (t *Tracker) Partition() int32 { return t.partition }

// Len returns how many nodes have liveness newer than their snapshot.
func (t *Tracker) Len() int { return len(t.nodes) }

// Dirty reports whether a move is not yet checkpointed.
func (t *Tracker) Dirty() bool { return len(t.dirty) > 0 || t.oldBuckets != 0 }

// Get returns the node's entry, if the tracker holds one.
func (t *Tracker) Get(id uuid.UUID) (Entry, bool) {
	e, ok := t.nodes[id]
	return e, ok
}

// Moved records that a heartbeat moved st's liveness and nothing else.
func (t *Tracker) Moved(st *decide.NodeState) {
	e := Entry{AttemptID: st.AttemptID, Sequence: st.Sequence}
	if st.LastHeartbeatAt != nil {
		e.LastHeartbeatAt = *st.LastHeartbeatAt
	}
	if st.LivenessDeadline != nil {
		e.LivenessDeadline = *st.LivenessDeadline
	}
	t.nodes[st.NodeID] = e
	t.grow()
	t.dirty[t.bucketOf(st.NodeID)] = struct{}{}
}

// Snapshotted records that the node's snapshot (or tombstone) now holds its
// latest state: its entry is dropped, and its bucket rewritten without it.
func (t *Tracker) Snapshotted(id uuid.UUID) {
	if _, ok := t.nodes[id]; !ok {
		return
	}
	delete(t.nodes, id)
	t.dirty[t.bucketOf(id)] = struct{}{}
}

// IdleEvery is how many checkpoint intervals may pass without a checkpoint
// while the input moves on but no liveness does (ticks, stale heartbeats):
// the head is then rewritten anyway, so the heartbeats a restore replays
// stay a short tail.
const IdleEvery = 60

// Due reports whether a checkpoint covering the input before inputOffset
// should be written at now: something moved and at least interval passed
// since the last one, or, after a first checkpoint, the input moved on and
// IdleEvery intervals passed.
func (t *Tracker) Due(now time.Time, interval time.Duration, inputOffset int64) bool {
	since := now.Sub(t.last)
	if t.Dirty() {
		return since >= interval
	}
	// Before the first checkpoint there is nothing to replay from: a
	// restore then replays nothing, which is right while nothing moved.
	return t.covered >= 0 && inputOffset > t.covered && since >= IdleEvery*interval
}

// grow splits the partition into twice the buckets when they hold more than
// perBucket nodes on average. Every bucket of the new count is rewritten and
// the old count's records deleted.
func (t *Tracker) grow() {
	if len(t.nodes) <= t.perBucket*int(t.buckets) {
		return
	}
	if t.oldBuckets == 0 {
		t.oldBuckets = t.buckets
	}
	for len(t.nodes) > t.perBucket*int(t.buckets) {
		t.buckets *= 2
	}
	if t.oldBuckets == t.buckets {
		t.oldBuckets = 0
	}
	for b := uint32(0); b < t.buckets; b++ {
		t.dirty[b] = struct{}{}
	}
}

// bucketOf returns the node's bucket. A node id is a random UUID (or a
// hash-based one), so its low bytes spread evenly without hashing, and the
// result is the same in every process.
func (t *Tracker) bucketOf(id uuid.UUID) uint32 {
	v := uint32(id[12])<<24 | uint32(id[13])<<16 | uint32(id[14])<<8 | uint32(id[15])
	return v % t.buckets
}
