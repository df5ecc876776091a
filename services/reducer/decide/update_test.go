package decide

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// activeState is an ACTIVE node registered from intro() (version 1.2.0),
// its latest introspection stamped ts.
func activeState(ts time.Time) *NodeState {
	in := intro()
	in.Timestamp = ts
	d := DecideIntrospection(nil, in, t0, params)
	a := DecideAck(d.State, Ack{NodeID: nodeID, CommandID: corrID}, t0.Add(time.Second), params)
	if a.State.State != Active {
		panic(a.Reason)
	}
	return a.State
}

// One row per line of docs/reducer.md's Decisions table for a
// non-shutdown introspection of an ACTIVE node.
func TestDecideIntrospectionActiveTable(t *testing.T) {
	ts := t0.Add(-time.Minute)
	now := t0.Add(10 * time.Second)
	s := activeState(ts) // liveness deadline t0+61s
	upsertRegister := []IntentType{IntentPostgresUpsert, IntentConsulRegister}
	tests := []struct {
		name    string
		change  func(*Introspection)
		reason  string
		intents []IntentType
	}{
		{"startup, new version and endpoints", func(in *Introspection) {
			in.Reason, in.NodeVersion = ReasonStartup, "2.0.0"
			in.Endpoints = map[string]string{"health": "http://new-host:9000/health"}
		}, ReasonRestarted, upsertRegister},
		{"startup, same data", func(in *Introspection) { in.Reason = ReasonStartup }, ReasonNoChange, nil},
		{"startup, liveness reset when later", func(in *Introspection) {
			in.Reason, in.NodeName = ReasonStartup, ptr("renamed")
		}, ReasonRestarted, upsertRegister},
		{"capability_change", func(in *Introspection) {
			in.Reason, in.Capabilities = "capability_change", json.RawMessage(`{"read":true,"write":true}`)
		}, ReasonUpdated, upsertRegister},
		{"capability_change, same data", func(in *Introspection) { in.Reason = "capability_change" }, ReasonNoChange, nil},
		{"health_change, new endpoint", func(in *Introspection) {
			in.Reason = "health_change"
			in.Endpoints = map[string]string{"health": "http://embedding-effect:8085/health", "api": "http://x:1"}
		}, ReasonUpdated, upsertRegister},
		{"request, new extras", func(in *Introspection) {
			in.Reason, in.Extras = "request", json.RawMessage(`{"flow_x":1}`)
		}, ReasonUpdated, upsertRegister},
		{"heartbeat, same data", func(in *Introspection) { in.Reason = "heartbeat" }, ReasonNoChange, nil},
		{"heartbeat, new type", func(in *Introspection) { in.Reason, in.NodeType = "heartbeat", "compute" },
			ReasonUpdated, []IntentType{IntentPostgresUpsert, IntentConsulDeregister, IntentConsulRegister}},
		{"late (older timestamp), new data", func(in *Introspection) {
			in.Reason, in.NodeVersion, in.Timestamp = ReasonStartup, "0.9.0", ts.Add(-time.Second)
		}, ReasonStale, nil},
		{"same timestamp, other data", func(in *Introspection) {
			in.Reason, in.NodeVersion, in.Timestamp = ReasonStartup, "0.9.0", ts
		}, ReasonStale, nil},
		{"unprojectable type", func(in *Introspection) { in.NodeType = "runtime_host" }, "State active blocks new registration", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := intro()
			in.Timestamp = ts.Add(time.Second)
			tt.change(&in)
			d := DecideIntrospection(s, in, now, params)
			_, it := kinds(d)
			if d.Reason != tt.reason || d.State.State != Active || !eq(it, tt.intents) || len(d.Events) != 0 {
				t.Fatalf("got %q %s %v events %d; want %q active %v none", d.Reason, d.State.State, it, len(d.Events), tt.reason, tt.intents)
			}
			if d.Emit != (len(tt.intents) > 0) {
				t.Fatalf("emit %v with intents %v", d.Emit, it)
			}
			if !d.Emit {
				if d.State != s {
					t.Fatal("a no-op changed the state")
				}
				return
			}
			ns := d.State
			if ns.NodeVersion != in.NodeVersion || !SameDeclaredData(ns, in) {
				t.Errorf("state does not hold the new data: %+v", ns)
			}
			if ns.AttemptID != s.AttemptID || !ns.RegisteredAt.Equal(s.RegisteredAt) || !ns.LastStateChangeAt.Equal(s.LastStateChangeAt) {
				t.Error("an update in place is no new attempt")
			}
			if !ns.LastIntrospectionAt.Equal(in.Timestamp) {
				t.Errorf("last introspection %v, want %v", ns.LastIntrospectionAt, in.Timestamp)
			}
			if in.Reason == ReasonStartup {
				want := now.Add(params.LivenessInterval)
				if !ns.LivenessDeadline.Equal(want) {
					t.Errorf("startup liveness deadline %v, want %v", ns.LivenessDeadline, want)
				}
			} else if !ns.LivenessDeadline.Equal(*s.LivenessDeadline) {
				t.Errorf("liveness deadline moved by %s", in.Reason)
			}
			up := d.Intents[0].Upsert
			if up.CurrentState != Active || up.NodeVersion != in.NodeVersion || up.NodeType != in.NodeType ||
				!up.LivenessDeadline.Equal(*ns.LivenessDeadline) || string(up.Capabilities) != string(in.Capabilities) {
				t.Errorf("upsert %+v", up)
			}
			reg := d.Intents[len(d.Intents)-1].Register
			want := ConsulRegistrationFor(in)
			want.Health = "passing" // an ACTIVE node's
			if !reflect.DeepEqual(reg, want) {
				t.Errorf("register %+v, want %+v", reg, want)
			}
			for i, x := range d.Intents {
				if x.Sequence != s.Sequence+int64(i)+1 {
					t.Errorf("intent %d sequence %d", i, x.Sequence)
				}
			}
			if len(d.Intents) == 3 && d.Intents[1].Deregister.ServiceID != ServiceID("effect", nodeID) {
				t.Errorf("old service not deregistered: %+v", d.Intents[1].Deregister)
			}
		})
	}
	// A startup never moves the liveness deadline earlier.
	late := s.Clone()
	late.LivenessDeadline = ptr(t0.Add(time.Hour))
	in := intro()
	in.Reason, in.NodeVersion, in.Timestamp = ReasonStartup, "3.0.0", ts.Add(time.Second)
	if d := DecideIntrospection(late, in, now, params); !d.State.LivenessDeadline.Equal(t0.Add(time.Hour)) {
		t.Errorf("startup shortened the liveness deadline to %v", d.State.LivenessDeadline)
	}
}

// One row per state for an introspection with reason shutdown.
func TestDecideShutdownTable(t *testing.T) {
	hb := t0.Add(-5 * time.Second)
	tests := []struct {
		from   State
		emit   bool
		reason string
		to     State
		out    bool // event and intents
	}{
		{None, false, ReasonShutDownNR, None, false},
		{Active, true, ReasonShutDown, LivenessExpired, true},
		{Accepted, true, ReasonShutDown, LivenessExpired, true},
		{AwaitingAck, true, ReasonShutDown, LivenessExpired, true},
		{LivenessExpired, true, ReasonShutDownNR, LivenessExpired, false},
		{Rejected, true, ReasonShutDownNR, Rejected, false},
		{AckTimedOut, true, ReasonShutDownNR, AckTimedOut, false},
		{AckReceived, true, ReasonShutDownNR, AckReceived, false},
		{PendingRegistration, true, ReasonShutDownNR, PendingRegistration, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			s := inState(tt.from)
			if s != nil {
				s.LastHeartbeatAt = ptr(hb)
				s.LastIntrospectionAt = t0.Add(-time.Minute)
				s.NextResendAt = ptr(t0)
			}
			in := intro()
			in.Reason, in.Timestamp = ReasonShutdown, t0.Add(-time.Second)
			d := DecideIntrospection(s, in, t0, params)
			got := None
			if d.State != nil {
				got = d.State.State
			}
			if d.Emit != tt.emit || d.Reason != tt.reason || got != tt.to {
				t.Fatalf("got %v %q %s; want %v %q %s", d.Emit, d.Reason, got, tt.emit, tt.reason, tt.to)
			}
			if !Allowed(tt.from, TriggerIntrospection, got) {
				t.Fatalf("%s -> %s not in the FSM", tt.from, got)
			}
			ev, it := kinds(d)
			if !tt.out {
				if len(ev)+len(it) != 0 {
					t.Fatalf("outputs %v %v", ev, it)
				}
				if d.State != nil && !d.State.LastIntrospectionAt.Equal(in.Timestamp) {
					t.Error("the shutdown's timestamp is not kept")
				}
				return
			}
			if !eq(ev, []EventKind{EventLivenessExpired}) || !eq(it, []IntentType{IntentPostgresUpdate, IntentConsulDeregister}) {
				t.Fatalf("outputs %v %v", ev, it)
			}
			ns := d.State
			if ns.LivenessTimeoutEmittedAt == nil || !ns.LivenessTimeoutEmittedAt.Equal(t0) || ns.NextResendAt != nil || !ns.LastStateChangeAt.Equal(t0) {
				t.Errorf("state %+v", ns)
			}
			if e := d.Events[0]; e.LastHeartbeatAt == nil || !e.LastHeartbeatAt.Equal(hb) || e.CausationID != corrID {
				t.Errorf("event %+v", e)
			}
			if u := d.Intents[0].Update; *u.CurrentState != LivenessExpired || !u.LivenessTimeoutEmittedAt.Equal(t0) {
				t.Errorf("update %+v", u)
			}
			if d.Intents[1].Deregister.ServiceID != ServiceID("effect", nodeID) || d.Intents[1].Sequence != 9 {
				t.Errorf("deregister %+v", d.Intents[1])
			}
			// No expiry fires afterwards, and the next startup
			// registers the node again.
			if x := DecideTimeout(ns, Tick{Now: t0.Add(time.Hour)}, params, false); x.Emit {
				t.Errorf("tick after shutdown: %s", x.Reason)
			}
			up := intro()
			up.Reason, up.Timestamp = ReasonStartup, t0.Add(time.Minute)
			if r := DecideIntrospection(ns, up, t0.Add(time.Minute), params); r.State.State != AwaitingAck {
				t.Errorf("startup after shutdown: %s", r.Reason)
			}
			// A startup stamped before the shutdown does not.
			up.Timestamp = t0.Add(-2 * time.Second)
			if r := DecideIntrospection(ns, up, t0.Add(time.Minute), params); r.Emit || r.Reason != ReasonStale {
				t.Errorf("late startup after shutdown: %v %s", r.Emit, r.Reason)
			}
		})
	}
	// A stale shutdown (older than the latest introspection) changes nothing.
	s := activeState(t0)
	in := intro()
	in.Reason, in.Timestamp = ReasonShutdown, t0.Add(-time.Second)
	if d := DecideIntrospection(s, in, t0.Add(time.Minute), params); d.Emit || d.Reason != ReasonStale {
		t.Errorf("stale shutdown: %v %s", d.Emit, d.Reason)
	}
}

// Sequencing: a shuffled, duplicated stream of a node's introspections
// (each a version stamped with its own timestamp) never leaves the node
// with older data than the newest it applied, and ends with the newest
// version's data whatever the order.
func TestIntrospectionStreamNeverRollsBack(t *testing.T) {
	reasons := []string{ReasonStartup, "capability_change", "health_change", "request", "heartbeat"}
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, seed^0x5eed))
		n := 2 + r.IntN(6)
		var stream []Introspection
		for v := 0; v < n; v++ {
			in := intro()
			in.Timestamp = t0.Add(time.Duration(v) * time.Second)
			in.NodeVersion = fmt.Sprintf("1.%d.0", v)
			in.Reason = reasons[r.IntN(len(reasons))]
			in.CorrelationID = uuid.NewSHA1(nodeID, []byte(fmt.Sprint(seed, v)))
			stream = append(stream, in)
			if r.IntN(3) == 0 {
				stream = append(stream, in) // duplicated
			}
		}
		r.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
		var s *NodeState
		now := t0
		newest := -1
		for step, in := range stream {
			now = now.Add(time.Second)
			d := DecideIntrospection(s, in, now, params)
			if d.State != nil && d.State.State == AwaitingAck && (s == nil || s.State != AwaitingAck) {
				d = DecideAck(d.State, Ack{NodeID: nodeID, CommandID: in.CorrelationID}, now, params)
			}
			if d.State != nil {
				s = d.State
			}
			v := int(in.Timestamp.Sub(t0) / time.Second)
			if v > newest && s != nil && s.State == Active {
				newest = v
			}
			if want := fmt.Sprintf("1.%d.0", newest); s != nil && s.State == Active && s.NodeVersion != want {
				t.Fatalf("seed %d step %d: version %s after applying 1.%d.0, want %s (%s)", seed, step, s.NodeVersion, v, want, d.Reason)
			}
		}
		if want := fmt.Sprintf("1.%d.0", n-1); s.NodeVersion != want {
			t.Fatalf("seed %d: ended with %s, want %s", seed, s.NodeVersion, want)
		}
	}
}

// A node that restarts before it acks gets a new attempt with its new data;
// a new node type also takes the old Consul service out.
func TestRestartWhileAwaitingAck(t *testing.T) {
	first := DecideIntrospection(nil, intro(), t0, params).State
	in := intro()
	in.NodeVersion, in.NodeType, in.CorrelationID = "2.0.0", "compute", uuid.New()
	in.Timestamp = t0.Add(time.Second)
	d := DecideIntrospection(first, in, t0.Add(time.Second), params)
	if d.Reason != ReasonReregistered || d.State.State != AwaitingAck || d.State.AttemptID == first.AttemptID || d.State.NodeVersion != "2.0.0" {
		t.Fatalf("decision %q state %+v", d.Reason, d.State)
	}
	var types []IntentType
	for _, x := range d.Intents {
		types = append(types, x.Type)
	}
	if !reflect.DeepEqual(types, []IntentType{IntentPostgresUpsert, IntentConsulDeregister, IntentConsulRegister}) ||
		d.Intents[1].Deregister.ServiceID != ServiceID("effect", nodeID) {
		t.Fatalf("intents %v", types)
	}
	if !d.State.RegisteredAt.Equal(first.RegisteredAt) {
		t.Error("registered_at moved")
	}
	// The same introspection again is the attempt's own: no new attempt.
	again := DecideIntrospection(d.State, in, t0.Add(2*time.Second), params)
	if again.State.AttemptID != d.State.AttemptID || len(again.Intents) != 0 {
		t.Fatalf("redelivery: %q %+v", again.Reason, again.Intents)
	}
}
