package liveness

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

// Record is one checkpoint record before it is keyed for the topic: the
// partition's head, or the bucket it rewrites, and its value, nil for a
// tombstone (a bucket left empty, or one of a bucket count the partition
// has outgrown).
type Record struct {
	Head            bool
	Buckets, Bucket uint32
	Value           []byte
}

// Checkpoint returns the records that bring the checkpoint topic up to date,
// covering the reducer input before inputOffset, and marks the tracker
// clean as of now. The caller sends them in the transaction that commits
// the input up to inputOffset; if that transaction fails, the caller
// restores the partition and with it a new tracker.
func (t *Tracker) Checkpoint(inputOffset int64, now time.Time) ([]Record, error) {
	var out []Record
	if t.oldBuckets != 0 {
		for b := uint32(0); b < t.oldBuckets; b++ {
			out = append(out, Record{Buckets: t.oldBuckets, Bucket: b})
		}
		t.oldBuckets = 0
	}
	head, err := proto.Marshal(&fleetv1.LivenessCheckpoint{Partition: t.partition, Buckets: t.buckets,
		InputOffset: inputOffset, WrittenAtUnixNano: now.UnixNano(), Head: true})
	if err != nil {
		return nil, fmt.Errorf("liveness checkpoint: %w", err)
	}
	defer func() {
		clear(t.dirty)
		t.last, t.covered = now, inputOffset
	}()
	if len(t.dirty) == 0 {
		return append(out, Record{Head: true, Buckets: t.buckets, Value: head}), nil
	}
	byBucket := make(map[uint32][]*fleetv1.NodeLiveness, len(t.dirty))
	for id, e := range t.nodes {
		b := t.bucketOf(id)
		if _, ok := t.dirty[b]; !ok {
			continue
		}
		byBucket[b] = append(byBucket[b], &fleetv1.NodeLiveness{
			NodeId:                   id[:],
			RegistrationAttemptId:    e.AttemptID[:],
			Sequence:                 e.Sequence,
			LastHeartbeatAtUnixNano:  unixNano(e.LastHeartbeatAt),
			LivenessDeadlineUnixNano: unixNano(e.LivenessDeadline),
		})
	}
	dirty := make([]uint32, 0, len(t.dirty))
	for b := range t.dirty {
		dirty = append(dirty, b)
	}
	slices.Sort(dirty)
	for _, b := range dirty {
		nodes := byBucket[b]
		if len(nodes) == 0 {
			out = append(out, Record{Buckets: t.buckets, Bucket: b})
			continue
		}
		v, err := proto.Marshal(&fleetv1.LivenessCheckpoint{
			Partition: t.partition, Bucket: b, Buckets: t.buckets,
			InputOffset: inputOffset, WrittenAtUnixNano: now.UnixNano(), Nodes: nodes,
		})
		if err != nil {
			return nil, fmt.Errorf("liveness checkpoint: %w", err)
		}
		out = append(out, Record{Buckets: t.buckets, Bucket: b, Value: v})
	}
	return append(out, Record{Head: true, Buckets: t.buckets, Value: head}), nil
}

// Load rebuilds partition p's tracker from the latest value of every
// checkpoint key on the topic (tombstones left out) and returns it with the
// input offset from which heartbeats must be replayed: the head's, -1 when
// the partition has no checkpoint yet. Records of a bucket count other
// than the newest are ignored: the split that outgrew them deleted them in
// the same transaction that wrote their successors.
func Load(p int32, perBucket int, values [][]byte) (*Tracker, int64, error) {
	t := NewTracker(p, perBucket)
	from := int64(-1)
	cps := make([]*fleetv1.LivenessCheckpoint, 0, len(values))
	for _, v := range values {
		cp := &fleetv1.LivenessCheckpoint{}
		if err := proto.Unmarshal(v, cp); err != nil {
			return nil, 0, fmt.Errorf("liveness checkpoint of partition %d: %w", p, err)
		}
		if cp.Partition != p {
			continue // a record of another partition's keyspace: not ours
		}
		if cp.Buckets == 0 {
			return nil, 0, fmt.Errorf("liveness checkpoint of partition %d: no bucket count", p)
		}
		if cp.Head {
			from = max(from, cp.InputOffset)
			continue
		}
		cps = append(cps, cp)
		t.buckets = max(t.buckets, cp.Buckets)
	}
	t.covered = from
	for _, cp := range cps {
		if cp.Buckets != t.buckets {
			continue
		}
		for _, n := range cp.Nodes {
			id, err := uuid.FromBytes(n.NodeId)
			if err != nil {
				return nil, 0, fmt.Errorf("liveness checkpoint of partition %d: node id: %w", p, err)
			}
			att, err := uuid.FromBytes(n.RegistrationAttemptId)
			if err != nil {
				return nil, 0, fmt.Errorf("liveness checkpoint of partition %d: attempt id: %w", p, err)
			}
			t.nodes[id] = Entry{AttemptID: att, Sequence: n.Sequence,
				LastHeartbeatAt: fromUnixNano(n.LastHeartbeatAtUnixNano), LivenessDeadline: fromUnixNano(n.LivenessDeadlineUnixNano)}
		}
	}
	return t, from, nil
}

// Apply lays the tracker's entries over the states restored from the
// snapshots: an entry wins when it belongs to the node's registration
// attempt and carries a later sequence (every intent the node's state emits
// raises it, so the later write of the two is the one with the higher
// sequence). An entry that loses is dropped, and its bucket rewritten at the
// next checkpoint. It returns how many entries were applied.
func (t *Tracker) Apply(part *state.Partition) int {
	applied := 0
	for id, e := range t.nodes {
		st := part.Get(id)
		if st == nil || st.AttemptID != e.AttemptID || e.Sequence <= st.Sequence {
			delete(t.nodes, id)
			t.dirty[t.bucketOf(id)] = struct{}{}
			continue
		}
		part.Put(withLiveness(st, e))
		applied++
	}
	return applied
}

// withLiveness returns a copy of st with e's liveness.
func withLiveness(st *decide.NodeState, e Entry) *decide.NodeState {
	ns := st.Clone()
	ns.Sequence = e.Sequence
	ns.LastHeartbeatAt = timePtr(e.LastHeartbeatAt)
	ns.LivenessDeadline = timePtr(e.LivenessDeadline)
	return ns
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
