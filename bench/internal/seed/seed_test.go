package seed

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/node/sim"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/snapshot"
)

func TestActiveNodesAndTheirRecords(t *testing.T) {
	plan := sim.Plan(sim.Options{Nodes: 8, Seed: "seed-test"}, "http://127.0.0.1:1") // with a health server: a Consul check to derive
	at := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	p := decide.DefaultParams()
	nodes, err := Active(plan, at, p)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		st := n.State
		switch {
		case st.NodeID != plan[i].Identity.NodeID:
			t.Fatalf("node %d: state of %s, want %s", i, st.NodeID, plan[i].Identity.NodeID)
		case st.State != decide.Active || st.Sequence != 4:
			t.Fatalf("node %d: %s at sequence %d, want active at 4 (upsert, register, ack update, register as ACTIVE)", i, st.State, st.Sequence)
		case !st.LivenessDeadline.Equal(at.Add(time.Second + p.LivenessInterval)):
			t.Fatalf("node %d: liveness deadline %s", i, st.LivenessDeadline)
		case st.ConsulRegistration().HealthURL == nil:
			t.Fatalf("node %d: consul derivation %+v, want one with the plan's health check", i, st.ConsulRegistration())
		case !json.Valid(st.Capabilities) || len(st.Capabilities) < 20:
			t.Fatalf("node %d: capabilities %q", i, st.Capabilities)
		}
		rec, err := Snapshot(st, at)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := pipeline.DecodeSnapshot(rec.Value)
		if err != nil || snap.EntityID != st.NodeID || snap.CurrentState != "active" {
			t.Fatalf("node %d: snapshot value %+v (%v)", i, snap, err)
		}
		back, err := snapshot.Decode(rec.Value, rec.State)
		if err != nil {
			t.Fatal(err)
		}
		// The reducer restores exactly the state it was seeded with.
		if !reflect.DeepEqual(normalize(back), normalize(st)) {
			t.Fatalf("node %d: reducer_state round trip\n got %+v\nwant %+v", i, *back, *st)
		}
		// ...and the consul effect derives the service with its check.
		if c, err := snapshot.ConsulOf(rec.Value, rec.State); err != nil || c == nil || c.ServiceID != st.ConsulRegistration().ServiceID || c.HealthCheck == nil {
			t.Fatalf("node %d: snapshot consul %+v (%v)", i, c, err)
		}
		r := Row(st)
		if r.EntityID != st.NodeID || r.State != "active" || r.Sequence != 4 || r.RegistrationSeq != 1 || r.AttemptID != st.AttemptID {
			t.Fatalf("node %d: row %+v", i, r)
		}
	}
}

// normalize drops monotonic clock readings and locations, which JSON does
// not carry.
func normalize(s *decide.NodeState) decide.NodeState {
	c := *s.Clone()
	fix := func(p **time.Time) {
		if *p != nil {
			v := (*p).UTC().Round(0)
			*p = &v
		}
	}
	c.RegisteredAt, c.LastStateChangeAt = c.RegisteredAt.UTC().Round(0), c.LastStateChangeAt.UTC().Round(0)
	fix(&c.AckDeadline)
	fix(&c.LivenessDeadline)
	fix(&c.LastHeartbeatAt)
	fix(&c.AckTimeoutEmittedAt)
	fix(&c.LivenessTimeoutEmittedAt)
	return c
}
