package liveness

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.UTC)

func node(i int, seq int64, hb time.Time) *decide.NodeState {
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i), byte(i >> 8)})
	dl := hb.Add(90 * time.Second)
	return &decide.NodeState{NodeID: id, State: decide.Active, AttemptID: uuid.NewSHA1(id, []byte("attempt")),
		Sequence: seq, LastHeartbeatAt: &hb, LivenessDeadline: &dl}
}

// values returns the latest value of every key the records would leave on
// a compacted topic, as the restore sees them.
func values(t *testing.T, batches ...[]Record) [][]byte {
	t.Helper()
	latest := map[string][]byte{}
	for _, recs := range batches {
		for _, r := range recs {
			key := "head"
			if !r.Head {
				key = string(rune('a'+r.Buckets)) + "/" + string(rune('a'+r.Bucket))
			}
			if r.Value == nil {
				delete(latest, key)
				continue
			}
			latest[key] = r.Value
		}
	}
	var out [][]byte
	for _, v := range latest {
		out = append(out, v)
	}
	return out
}

func TestCheckpointRoundTrip(t *testing.T) {
	tr := NewTracker(3, 0)
	if tr.Due(t0, time.Second, 10) {
		t.Fatal("a fresh tracker with nothing moved is due")
	}
	a, b := node(1, 5, t0), node(2, 7, t0.Add(time.Second))
	tr.Moved(a)
	tr.Moved(b)
	if !tr.Due(t0, time.Second, 10) {
		t.Fatal("moves before the first checkpoint are not due")
	}
	recs, err := tr.Checkpoint(10, t0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Dirty() || tr.Due(t0.Add(500*time.Millisecond), time.Second, 11) {
		t.Fatal("tracker still dirty or due right after a checkpoint")
	}
	loaded, from, err := Load(3, 0, values(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	if from != 10 || loaded.Len() != 2 {
		t.Fatalf("loaded %d nodes from offset %d, want 2 from 10", loaded.Len(), from)
	}
	for _, st := range []*decide.NodeState{a, b} {
		e, ok := loaded.Get(st.NodeID)
		if !ok || e.Sequence != st.Sequence || !e.LastHeartbeatAt.Equal(*st.LastHeartbeatAt) ||
			!e.LivenessDeadline.Equal(*st.LivenessDeadline) || e.AttemptID != st.AttemptID {
			t.Errorf("node %s loaded as %+v", st.NodeID, e)
		}
	}
	// Another partition's records on the same topic are not this one's.
	other, from, err := Load(4, 0, values(t, recs))
	if err != nil || other.Len() != 0 || from != -1 {
		t.Errorf("partition 4 loaded %d nodes from %d (%v)", other.Len(), from, err)
	}
}

func TestApplyKeepsTheNewerOfSnapshotAndEntry(t *testing.T) {
	base := node(1, 5, t0)
	later := *base
	later.Sequence, later.LastHeartbeatAt = 6, ptr(t0.Add(30*time.Second))
	later.LivenessDeadline = ptr(t0.Add(120 * time.Second))
	otherAttempt := later
	otherAttempt.AttemptID = uuid.New()
	cases := []struct {
		name     string
		snapshot *decide.NodeState // nil: the node has no snapshot (deleted)
		moved    *decide.NodeState
		applied  bool
	}{
		{"entry newer than snapshot", base, &later, true},
		{"snapshot as new as entry", &later, &later, false},
		{"snapshot newer than entry", &later, base, false},
		{"entry of another attempt", base, &otherAttempt, false},
		{"node deleted", nil, &later, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			part := state.NewPartition(0)
			if tc.snapshot != nil {
				part.Put(tc.snapshot)
			}
			tr := NewTracker(0, 0)
			tr.Moved(tc.moved)
			if _, err := tr.Checkpoint(1, t0); err != nil {
				t.Fatal(err)
			}
			got := tr.Apply(part)
			if (got == 1) != tc.applied {
				t.Fatalf("applied %d, want applied=%v", got, tc.applied)
			}
			st := part.Get(tc.moved.NodeID)
			switch {
			case tc.applied:
				if st.Sequence != tc.moved.Sequence || !st.LivenessDeadline.Equal(*tc.moved.LivenessDeadline) {
					t.Errorf("state after apply: seq %d deadline %s", st.Sequence, st.LivenessDeadline)
				}
				if d, ok := part.NextDeadline(); !ok || !d.Equal(*tc.moved.LivenessDeadline) {
					t.Errorf("deadline index has %s, want the entry's deadline", d)
				}
			default:
				if tr.Len() != 0 || !tr.Dirty() {
					t.Errorf("a losing entry is kept (%d) or its bucket not rewritten (dirty %v)", tr.Len(), tr.Dirty())
				}
				if tc.snapshot != nil && st != tc.snapshot {
					t.Errorf("snapshot state replaced")
				}
			}
		})
	}
}

func TestSnapshottedDropsTheEntry(t *testing.T) {
	tr := NewTracker(0, 0)
	a, b := node(1, 5, t0), node(2, 5, t0)
	tr.Moved(a)
	tr.Moved(b)
	first, _ := tr.Checkpoint(10, t0)
	tr.Snapshotted(a.NodeID)
	if !tr.Dirty() {
		t.Fatal("dropping an entry does not rewrite its bucket")
	}
	second, err := tr.Checkpoint(20, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	loaded, from, err := Load(0, 0, values(t, first, second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := loaded.Get(a.NodeID); ok || loaded.Len() != 1 || from != 20 {
		t.Errorf("after the snapshot: %d entries (a kept: %v), from %d", loaded.Len(), ok, from)
	}
	// The last node of the bucket gone: the bucket is deleted.
	tr.Snapshotted(b.NodeID)
	third, _ := tr.Checkpoint(30, t0.Add(2*time.Second))
	var tomb bool
	for _, r := range third {
		tomb = tomb || (!r.Head && r.Value == nil)
	}
	if !tomb {
		t.Error("an emptied bucket is not deleted")
	}
}

func TestGrowSplitsAndDeletesTheOldBuckets(t *testing.T) {
	tr := NewTracker(0, 4)
	var all []*decide.NodeState
	var written [][]Record
	for i := range 40 {
		st := node(i, int64(i+1), t0.Add(time.Duration(i)*time.Second))
		all = append(all, st)
		tr.Moved(st)
		if i%7 == 0 {
			recs, err := tr.Checkpoint(int64(i+1), t0.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			written = append(written, recs)
		}
	}
	recs, _ := tr.Checkpoint(100, t0.Add(time.Minute))
	written = append(written, recs)
	if tr.buckets < 10 {
		t.Fatalf("40 nodes at 4 a bucket in %d buckets", tr.buckets)
	}
	loaded, from, err := Load(0, 4, values(t, written...))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Len() != len(all) || from != 100 || loaded.buckets != tr.buckets {
		t.Fatalf("loaded %d nodes in %d buckets from %d, want %d in %d from 100", loaded.Len(), loaded.buckets, from, len(all), tr.buckets)
	}
	for _, st := range all {
		if e, ok := loaded.Get(st.NodeID); !ok || e.Sequence != st.Sequence {
			t.Errorf("node %s: %+v %v", st.NodeID, e, ok)
		}
	}
	for _, v := range values(t, written...) {
		var cp fleetv1.LivenessCheckpoint
		if err := proto.Unmarshal(v, &cp); err != nil {
			t.Fatal(err)
		}
		if !cp.Head && cp.Buckets != tr.buckets {
			t.Errorf("a bucket of the outgrown count %d is left on the topic", cp.Buckets)
		}
	}
}

func TestIdleHeadRefresh(t *testing.T) {
	tr := NewTracker(0, 0)
	if tr.Due(t0.Add(IdleEvery*time.Second), time.Second, 500) {
		t.Error("idle head due before any checkpoint")
	}
	tr.Moved(node(1, 1, t0))
	if _, err := tr.Checkpoint(5, t0); err != nil {
		t.Fatal(err)
	}
	if tr.Due(t0.Add(30*time.Second), time.Second, 500) {
		t.Error("due while only the input moved, before IdleEvery intervals")
	}
	if !tr.Due(t0.Add(IdleEvery*time.Second), time.Second, 500) {
		t.Error("not due after IdleEvery intervals while the input moved on")
	}
	if tr.Due(t0.Add(IdleEvery*time.Second), time.Second, 5) {
		t.Error("due although the input did not move")
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	if _, _, err := Load(0, 0, [][]byte{{0xff, 0xff, 0xff}}); err == nil {
		t.Error("a value that is not a checkpoint loads")
	}
	bad, _ := proto.Marshal(&fleetv1.LivenessCheckpoint{Buckets: 1, Nodes: []*fleetv1.NodeLiveness{{NodeId: []byte{1, 2}}}})
	if _, _, err := Load(0, 0, [][]byte{bad}); err == nil {
		t.Error("a node id of 2 bytes loads")
	}
	none, _ := proto.Marshal(&fleetv1.LivenessCheckpoint{Head: true})
	if _, _, err := Load(0, 0, [][]byte{none}); err == nil {
		t.Error("a record without a bucket count loads")
	}
}

func ptr[T any](v T) *T { return &v }
