package decide

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDecideOperator(t *testing.T) {
	cmdID := uuid.MustParse("0c0c0c0c-0000-4000-8000-000000000001")
	op := Operator{CommandID: cmdID, CorrelationID: corrID, NodeID: nodeID, Reason: "decommissioned", RequestedBy: "ops@host"}
	now := t0.Add(time.Hour)
	awaiting := DecideIntrospection(nil, intro(), t0, params).State
	active := activeState(t0)
	tests := []struct {
		name   string
		s      *NodeState
		evict  bool
		reason string
	}{
		{"unknown node", nil, false, "Unknown node"},
		{"active", active, false, ReasonDeregistered},
		{"awaiting ack", awaiting, false, ReasonDeregistered},
		{"active, evicted", active, true, ReasonEvicted},
		{"expired", func() *NodeState { s := active.Clone(); s.State = LivenessExpired; return s }(), false, ReasonNotRegistered},
		{"rejected", func() *NodeState { s := active.Clone(); s.State = Rejected; return s }(), false, ReasonNotRegistered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := op
			o.Evict = tc.evict
			d := DecideOperator(tc.s, o, now)
			if d.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", d.Reason, tc.reason)
			}
			if tc.reason != ReasonDeregistered && tc.reason != ReasonEvicted {
				if d.Emit || len(d.Intents) != 0 || len(d.Events) != 0 {
					t.Fatalf("a node that is not registered got outputs: %+v", d)
				}
				return
			}
			if !d.Emit || d.State.State != LivenessExpired || d.State.LivenessTimeoutEmittedAt == nil || !d.State.LastStateChangeAt.Equal(now) {
				t.Fatalf("state %+v", d.State)
			}
			if !Allowed(tc.s.State, TriggerOperator, d.State.State) {
				t.Fatalf("transition %s -> %s not in the FSM", tc.s.State, d.State.State)
			}
			if len(d.Events) != 1 || d.Events[0].Kind != EventLivenessExpired || d.Events[0].CausationID != cmdID || d.Events[0].CorrelationID != corrID {
				t.Fatalf("events %+v", d.Events)
			}
			if len(d.Intents) != 2 || d.Intents[0].Type != IntentPostgresUpdate || d.Intents[1].Type != IntentConsulDeregister ||
				d.Intents[1].Deregister.ServiceID != ServiceID(tc.s.NodeType, nodeID) {
				t.Fatalf("intents %+v", d.Intents)
			}
			if d.Intents[0].Sequence <= tc.s.Sequence || d.Intents[1].Sequence <= d.Intents[0].Sequence {
				t.Fatalf("intents not sequenced after %d: %d, %d", tc.s.Sequence, d.Intents[0].Sequence, d.Intents[1].Sequence)
			}
			// The node is not banned: its next startup registers it again.
			in := intro()
			in.Timestamp = now.Add(time.Second)
			if r := DecideIntrospection(d.State, in, now.Add(time.Second), params); r.State.State != AwaitingAck {
				t.Fatalf("startup after deregister: %q", r.Reason)
			}
		})
	}
}

func TestEvictDue(t *testing.T) {
	now := t0.Add(time.Hour)
	op := Operator{Evict: true, State: AwaitingAck, OlderThan: 10 * time.Minute}
	st := func(s State, since time.Duration) *NodeState {
		return &NodeState{State: s, LastStateChangeAt: now.Add(-since)}
	}
	tests := []struct {
		name string
		s    *NodeState
		want bool
	}{
		{"old enough", st(AwaitingAck, 11*time.Minute), true},
		{"exactly the age", st(AwaitingAck, 10*time.Minute), false},
		{"too young", st(AwaitingAck, time.Minute), false},
		{"other state", st(Active, time.Hour), false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EvictDue(tc.s, op, now); got != tc.want {
				t.Fatalf("EvictDue = %v, want %v", got, tc.want)
			}
		})
	}
	if EvictDue(st(LivenessExpired, time.Hour), Operator{Evict: true, State: LivenessExpired}, now) {
		t.Fatal("a terminal state was evictable")
	}
}

// A command judges the node as it was when the operator asked: a
// deregister requested before the node's latest state change, and an
// evict whose age counts from the request, leave later registrations
// alone however late they are delivered.
func TestOperatorJudgesAsOfTheRequest(t *testing.T) {
	active := activeState(t0) // active since t0+1s
	now := t0.Add(time.Hour)
	tests := []struct {
		name        string
		requestedAt time.Time
		reason      string
	}{
		{"requested after the activation", t0.Add(time.Minute), ReasonDeregistered},
		{"requested before the activation, delivered late", t0.Add(-time.Minute), ReasonStaleOperator},
		{"no request time", time.Time{}, ReasonDeregistered},
		{"request time after now (clock ahead)", now.Add(time.Minute), ReasonDeregistered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := Operator{CommandID: corrID, NodeID: nodeID, RequestedAt: tc.requestedAt}
			if d := DecideOperator(active, op, now); d.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", d.Reason, tc.reason)
			}
		})
	}
	evict := Operator{Evict: true, State: Active, OlderThan: 10 * time.Minute, RequestedAt: t0.Add(5 * time.Minute)}
	if EvictDue(active, evict, now) {
		t.Fatal("evict counted the age from its delivery, not from its request")
	}
	evict.RequestedAt = t0.Add(20 * time.Minute)
	if !EvictDue(active, evict, now) {
		t.Fatal("a node active for longer than the age at the request was not selected")
	}
}
