package antientropy

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
)

func snap(t *testing.T, id uuid.UUID, state string, seq int64, consul bool) []byte {
	t.Helper()
	nt := "effect"
	s := pipeline.Snapshot{EntityID: id, Domain: "registration", CurrentState: state, NodeType: &nt,
		SnapshotVersion: seq, SourceProjectionSequence: &seq, SchemaVersion: "1.0.0"}
	if consul {
		s.Consul = &pipeline.ConsulRegisterPayload{IntentType: pipeline.ConsulRegister, ServiceID: "onex-effect-" + id.String(),
			ServiceName: "onex-effect", Tags: []string{"onex", "node-type:effect"}}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestViewApply(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	type rec struct {
		key   uuid.UUID
		value []byte
		bad   bool
	}
	tests := []struct {
		name    string
		records func(t *testing.T) []rec
		desired []uuid.UUID
		present []uuid.UUID
	}{
		{name: "active and awaiting_ack with consul are desired", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: snap(t, a, "active", 3, true)}, {key: b, value: snap(t, b, "awaiting_ack", 2, true)}}
		}, desired: []uuid.UUID{a, b}, present: []uuid.UUID{a, b}},
		{name: "expired and timed out are not desired", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: snap(t, a, "liveness_expired", 5, true)}, {key: b, value: snap(t, b, "ack_timed_out", 4, true)}}
		}, present: []uuid.UUID{a, b}},
		{name: "active without a consul derivation is not desired", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: snap(t, a, "active", 3, false)}}
		}, present: []uuid.UUID{a}},
		{name: "tombstone removes", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: snap(t, a, "active", 3, true)}, {key: a, value: nil}}
		}},
		{name: "older snapshot does not replace newer", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: snap(t, a, "liveness_expired", 9, true)}, {key: a, value: snap(t, a, "active", 4, true)}}
		}, present: []uuid.UUID{a}},
		{name: "newer snapshot replaces", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: snap(t, a, "active", 4, true)}, {key: a, value: snap(t, a, "liveness_expired", 9, true)}}
		}, present: []uuid.UUID{a}},
		{name: "garbage is ignored", records: func(t *testing.T) []rec {
			return []rec{{key: a, value: []byte("{nope"), bad: true}, {key: b, value: []byte(`{"entity_id":"` + b.String() + `"}`), bad: true},
				{key: a, value: snap(t, a, "active", 1, true)}}
		}, desired: []uuid.UUID{a}, present: []uuid.UUID{a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewView(nil)
			for _, r := range tt.records(t) {
				err := v.Apply([]byte(r.key.String()), r.value)
				if (err != nil) != r.bad {
					t.Fatalf("Apply: %v (bad=%v)", err, r.bad)
				}
			}
			got := map[uuid.UUID]bool{}
			for _, e := range v.Desired() {
				got[e.NodeID] = true
			}
			if len(got) != len(tt.desired) {
				t.Fatalf("desired = %v, want %v", got, tt.desired)
			}
			for _, id := range tt.desired {
				if !got[id] {
					t.Fatalf("%v not desired", id)
				}
			}
			for _, id := range tt.present {
				if _, ok := v.Get(id); !ok {
					t.Fatalf("%v missing from view", id)
				}
			}
			if v.len() != len(tt.present) {
				t.Fatalf("view has %d nodes, want %d", v.len(), len(tt.present))
			}
		})
	}
}
