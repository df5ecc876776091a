package decide

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

var (
	t0     = time.Date(2026, 3, 2, 14, 5, 7, 0, time.UTC)
	nodeID = uuid.MustParse("3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18")
	corrID = uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d")
	params = DefaultParams()
)

func intro() Introspection {
	return Introspection{
		NodeID: nodeID, NodeType: "effect", NodeVersion: "1.2.0",
		Capabilities:  json.RawMessage(`{"read":true}`),
		Endpoints:     map[string]string{"health": "http://embedding-effect:8085/health"},
		CorrelationID: corrID, HandlerCorrelationID: corrID,
	}
}

func inState(st State) *NodeState {
	if st == None {
		return nil
	}
	return &NodeState{NodeID: nodeID, State: st, NodeType: "effect", NodeVersion: "1.0.0",
		Capabilities: json.RawMessage(`{"read":true}`), CorrelationID: corrID,
		AckDeadline: ptr(t0.Add(-time.Second)), LivenessDeadline: ptr(t0.Add(-time.Second)),
		RegisteredAt: t0.Add(-time.Hour), Sequence: 7}
}

func kinds(d Decision) (ev []EventKind, in []IntentType) {
	for _, e := range d.Events {
		ev = append(ev, e.Kind)
	}
	for _, i := range d.Intents {
		in = append(in, i.Type)
	}
	return
}

func eq[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// One row per line of spec 4.3 (documented column).
func TestDecideIntrospectionTable(t *testing.T) {
	emit := []EventKind{EventInitiated, EventAccepted}
	intents := []IntentType{IntentPostgresUpsert, IntentConsulRegister}
	tests := []struct {
		from    State
		emit    bool
		reason  string
		toState State
	}{
		{None, true, "Registration initiated", AwaitingAck},
		{LivenessExpired, true, "Registration initiated", AwaitingAck},
		{Rejected, true, "Registration initiated", AwaitingAck},
		{AckTimedOut, true, "Registration initiated", AwaitingAck},
		{AwaitingAck, false, "Waiting for ack", AwaitingAck},
		{PendingRegistration, false, "State pending_registration blocks new registration", PendingRegistration},
		{Accepted, false, "State accepted blocks new registration", Accepted},
		{AckReceived, false, "State ack_received blocks new registration", AckReceived},
		{Active, false, "State active blocks new registration", Active},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			in := inState(tt.from)
			d := DecideIntrospection(in, intro(), t0, params)
			if d.Emit != tt.emit || d.Reason != tt.reason || d.State.State != tt.toState {
				t.Fatalf("got emit=%v reason=%q state=%s; want %v %q %s", d.Emit, d.Reason, d.State.State, tt.emit, tt.reason, tt.toState)
			}
			ev, it := kinds(d)
			if !tt.emit {
				if len(ev)+len(it) != 0 {
					t.Fatalf("no-op emitted %v %v", ev, it)
				}
				return
			}
			if !eq(ev, emit) || !eq(it, intents) {
				t.Fatalf("outputs %v %v, want %v %v", ev, it, emit, intents)
			}
			if !d.State.AckDeadline.Equal(t0.Add(30*time.Second)) || d.Events[1].AckDeadline != t0.Add(30*time.Second) {
				t.Errorf("ack deadline = %v, want now+30s", d.State.AckDeadline)
			}
			if d.State.AckTimeoutEmittedAt != nil || d.State.LivenessTimeoutEmittedAt != nil || d.State.LivenessDeadline != nil {
				t.Error("re-registration must clear markers and the old liveness deadline (spec 12 #3)")
			}
			if d.Events[0].CausationID != corrID || d.Events[0].AttemptID == uuid.Nil {
				t.Error("initiated event lacks causation or attempt id")
			}
			up := d.Intents[0].Upsert
			if up.CurrentState != AwaitingAck || up.LastAppliedEventID != d.State.AttemptID || up.NodeVersion != "1.2.0" {
				t.Errorf("upsert record wrong: %+v", up)
			}
			if tt.from != None {
				if d.Intents[0].Sequence != 8 || d.Intents[1].Sequence != 9 {
					t.Errorf("sequences %d,%d; want 8,9 continuing from 7", d.Intents[0].Sequence, d.Intents[1].Sequence)
				}
				if !d.State.RegisteredAt.Equal(t0.Add(-time.Hour)) {
					t.Error("registered_at must be kept across re-registration")
				}
			}
			if in != nil && in.State != tt.from {
				t.Fatal("decision mutated its input state")
			}
		})
	}
}

// One row per line of spec 4.4.
func TestDecideAckTable(t *testing.T) {
	ack := Ack{NodeID: nodeID, CommandID: uuid.New(), CorrelationID: corrID, Timestamp: t0}
	tests := []struct {
		from   State
		emit   bool
		reason string
	}{
		{None, false, "Unknown node"},
		{Accepted, true, "Ack received, transitioning to ACTIVE"},
		{AwaitingAck, true, "Ack received, transitioning to ACTIVE"},
		{AckReceived, false, "Duplicate ack"},
		{Active, false, "Duplicate ack"},
		{PendingRegistration, false, "Ack too early"},
		{AckTimedOut, false, "Ack too late"},
		{Rejected, false, "Terminal state"},
		{LivenessExpired, false, "Terminal state"},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			d := DecideAck(inState(tt.from), ack, t0, params)
			if d.Emit != tt.emit || d.Reason != tt.reason {
				t.Fatalf("got %v %q; want %v %q", d.Emit, d.Reason, tt.emit, tt.reason)
			}
			if !tt.emit {
				return
			}
			ev, it := kinds(d)
			if !eq(ev, []EventKind{EventAckReceived, EventBecameActive}) || !eq(it, []IntentType{IntentPostgresUpdate}) {
				t.Fatalf("outputs %v %v", ev, it)
			}
			if d.State.State != Active || !d.State.LivenessDeadline.Equal(t0.Add(60*time.Second)) {
				t.Fatalf("state %s deadline %v; want active, now+60s", d.State.State, d.State.LivenessDeadline)
			}
			if d.Events[0].CausationID != ack.CommandID || string(d.Events[1].Capabilities) != `{"read":true}` {
				t.Error("events must be caused by the command and carry the capabilities")
			}
			if u := d.Intents[0].Update; *u.CurrentState != Active || !u.LivenessDeadline.Equal(t0.Add(60*time.Second)) {
				t.Errorf("ack update wrong: %+v", u)
			}
		})
	}
}

// One row per line of spec 4.5.
func TestDecideHeartbeatTable(t *testing.T) {
	hb := Heartbeat{NodeID: nodeID, Timestamp: t0.Add(-2 * time.Second), CorrelationID: uuid.New()}
	tests := []struct {
		from   State
		emit   bool
		reason string
	}{
		{None, false, "Unknown node"},
		{Rejected, false, "Terminal state rejected — heartbeat ignored"},
		{LivenessExpired, false, "Terminal state liveness_expired — heartbeat ignored"},
		{Active, true, "Heartbeat recorded"},
		{AwaitingAck, true, "Heartbeat recorded"},
		{AckTimedOut, true, "Heartbeat recorded"},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			d := DecideHeartbeat(inState(tt.from), hb, t0, params)
			if d.Emit != tt.emit || d.Reason != tt.reason {
				t.Fatalf("got %v %q; want %v %q", d.Emit, d.Reason, tt.emit, tt.reason)
			}
			if !tt.emit {
				return
			}
			if len(d.Events) != 0 || len(d.Intents) != 1 || d.Intents[0].Type != IntentPostgresUpdate {
				t.Fatalf("heartbeat must emit no events and one update intent, got %v", d)
			}
			want := hb.Timestamp.Add(90 * time.Second)
			u := d.Intents[0].Update
			if !u.LivenessDeadline.Equal(want) || !u.LastHeartbeatAt.Equal(hb.Timestamp) || !u.UpdatedAt.Equal(t0) || u.CurrentState != nil {
				t.Fatalf("heartbeat update wrong: %+v", u)
			}
			if d.State.State != tt.from {
				t.Fatal("a heartbeat must not change the state")
			}
		})
	}
	// A late (reordered) heartbeat never moves the deadline back.
	s := inState(Active)
	s.LastHeartbeatAt = ptr(t0)
	s.LivenessDeadline = ptr(t0.Add(90 * time.Second))
	if d := DecideHeartbeat(s, hb, t0, params); d.Emit || d.Reason != "Stale heartbeat" {
		t.Fatalf("stale heartbeat: %v %q", d.Emit, d.Reason)
	}
}

// One row per line of spec 4.6, plus the rows the documented behaviour adds
// (state moves, markers, hold).
func TestDecideTimeoutTable(t *testing.T) {
	tick := Tick{TickID: uuid.New(), CorrelationID: uuid.New(), Now: t0}
	stamped := func(st State) *NodeState {
		s := inState(st)
		s.AckTimeoutEmittedAt, s.LivenessTimeoutEmittedAt = ptr(t0.Add(-time.Minute)), ptr(t0.Add(-time.Minute))
		return s
	}
	notDue := func(st State) *NodeState {
		s := inState(st)
		s.AckDeadline, s.LivenessDeadline = ptr(t0), ptr(t0) // strict: equal is not overdue
		return s
	}
	tests := []struct {
		name   string
		in     *NodeState
		hold   bool
		to     State
		events []EventKind
	}{
		{"overdue ack (awaiting_ack)", inState(AwaitingAck), false, AckTimedOut, []EventKind{EventAckTimedOut}},
		{"overdue ack (accepted)", inState(Accepted), false, AckTimedOut, []EventKind{EventAckTimedOut}},
		{"overdue liveness", inState(Active), false, LivenessExpired, []EventKind{EventLivenessExpired}},
		{"overdue liveness held", inState(Active), true, Active, nil},
		{"ack marker already stamped", stamped(AwaitingAck), false, AwaitingAck, nil},
		{"liveness marker already stamped", stamped(Active), false, Active, nil},
		{"deadline equal to now is not overdue", notDue(Active), false, Active, nil},
		{"ack deadline equal to now is not overdue", notDue(AwaitingAck), false, AwaitingAck, nil},
		{"state without deadlines", inState(AckReceived), false, AckReceived, nil},
		{"expired node", inState(LivenessExpired), false, LivenessExpired, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideTimeout(tt.in, tick, params, tt.hold)
			ev, it := kinds(d)
			if d.State.State != tt.to || !eq(ev, tt.events) {
				t.Fatalf("got %s %v; want %s %v (%s)", d.State.State, ev, tt.to, tt.events, d.Reason)
			}
			if len(tt.events) == 0 {
				if len(it) != 0 {
					t.Fatalf("no-op emitted intents %v", it)
				}
				return
			}
			if !eq(it, []IntentType{IntentPostgresUpdate, IntentConsulDeregister}) {
				t.Fatalf("intents %v, want update + deregister", it)
			}
			u := d.Intents[0].Update
			if *u.CurrentState != tt.to {
				t.Errorf("update does not move the projection to %s", tt.to)
			}
			if tt.to == AckTimedOut && (u.AckTimeoutEmittedAt == nil || d.State.AckTimeoutEmittedAt == nil) {
				t.Error("ack timeout marker not stamped with the state")
			}
			if tt.to == LivenessExpired && (u.LivenessTimeoutEmittedAt == nil || d.State.LivenessTimeoutEmittedAt == nil) {
				t.Error("liveness marker not stamped with the state")
			}
			if d.Events[0].CausationID != tick.TickID {
				t.Error("timeout events are caused by the tick")
			}
			if d.Intents[1].Deregister.ServiceID != "onex-effect-"+nodeID.String() {
				t.Errorf("deregister service id %q", d.Intents[1].Deregister.ServiceID)
			}
			// The same tick again emits nothing: the marker holds it.
			if again := DecideTimeout(d.State, tick, params, false); again.Emit {
				t.Fatal("a second tick re-emitted the timeout")
			}
		})
	}
}

func TestMassExpiryHold(t *testing.T) {
	tests := []struct {
		active, due, recent int
		hold                bool
	}{
		{100, 10, 0, false}, // 10%
		{100, 31, 0, true},  // 31% > 30%
		{100, 30, 0, false}, // exactly 30% is not more than 30%
		{70, 20, 15, true},  // recent expirations count: 35/85
		{10, 10, 0, false},  // small fleets expire normally
		{19, 0, 1, false},   // 20 nodes at the start, 1 gone: 5%
		{0, 0, 0, false},
	}
	for _, tt := range tests {
		if got, share := MassExpiryHold(tt.active, tt.due, tt.recent, params); got != tt.hold {
			t.Errorf("MassExpiryHold(%d,%d,%d) = %v (share %.2f), want %v", tt.active, tt.due, tt.recent, got, share, tt.hold)
		}
	}
}

func TestConsulDerivation(t *testing.T) {
	in := intro()
	r := ConsulRegistrationFor(in)
	if r.ServiceID != "onex-effect-"+nodeID.String() || r.ServiceName != "onex-effect" ||
		!eq(r.Tags, []string{"onex", "node-type:effect"}) || *r.Address != "embedding-effect" || *r.Port != 8085 ||
		*r.HealthURL != "http://embedding-effect:8085/health" {
		t.Fatalf("derivation wrong: %+v", r)
	}
	in.NodeType, in.MCPExpose, in.Description = "orchestrator", true, ptr("Registers ONEX Nodes!!")
	in.Endpoints = map[string]string{"api": "http://10.0.0.5/api"}
	r = ConsulRegistrationFor(in)
	if !eq(r.Tags, []string{"onex", "node-type:orchestrator", "mcp-enabled", "mcp-tool:registers-onex-nodes"}) {
		t.Fatalf("mcp tags %v", r.Tags)
	}
	if *r.Address != "10.0.0.5" || r.Port != nil || r.HealthURL != nil {
		t.Fatalf("api endpoint without port: %+v", r)
	}
	in.MCPToolName = ptr("register_node")
	if r = ConsulRegistrationFor(in); r.Tags[3] != "mcp-tool:register-node" {
		t.Fatalf("tool name %v", r.Tags)
	}
	in.Endpoints = nil
	if r = ConsulRegistrationFor(in); r.Address != nil || r.Port != nil {
		t.Fatal("no endpoints must give no address")
	}
	long := ""
	for i := 0; i < 80; i++ {
		long += "ab "
	}
	if got := MCPToolName(long); len(got) > 63 || got[len(got)-1] == '-' {
		t.Fatalf("tool name not truncated/trimmed: %q", got)
	}
}

// Property: random interleavings of introspection, ack, heartbeat and ticks
// for many nodes never break the invariants.
func TestPropertyInvariants(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7))
		const nodes = 8
		ids := make([]uuid.UUID, nodes)
		states := make([]*NodeState, nodes)
		for i := range ids {
			ids[i] = uuid.NewSHA1(uuid.Nil, []byte(fmt.Sprint(seed, i)))
		}
		type attemptStats struct{ ackTimeouts, livenessExpired int }
		attempts := map[uuid.UUID]*attemptStats{}
		validAck := map[uuid.UUID]bool{} // node -> acked in its current attempt
		lastSeq := make([]int64, nodes)
		now := t0
		for step := 0; step < 400; step++ {
			now = now.Add(time.Duration(r.IntN(20)) * time.Second)
			i := r.IntN(nodes)
			s := states[i]
			var d Decision
			var trig Trigger
			switch r.IntN(4) {
			case 0:
				in := intro()
				in.NodeID, in.CorrelationID, in.HandlerCorrelationID = ids[i], uuid.NewSHA1(ids[i], []byte(fmt.Sprint(step))), uuid.Nil
				d, trig = DecideIntrospection(s, in, now, params), TriggerIntrospection
				if d.Emit {
					attempts[d.State.AttemptID] = &attemptStats{}
					validAck[ids[i]] = false
				}
			case 1:
				d, trig = DecideAck(s, Ack{NodeID: ids[i], CommandID: uuid.New(), Timestamp: now}, now, params), TriggerAck
				if d.Emit {
					if s.State != AwaitingAck && s.State != Accepted {
						t.Fatalf("seed %d: ack accepted in state %s", seed, s.State)
					}
					validAck[ids[i]] = true
				}
			case 2:
				d, trig = DecideHeartbeat(s, Heartbeat{NodeID: ids[i], Timestamp: now.Add(-time.Duration(r.IntN(40)) * time.Second)}, now, params), TriggerHeartbeat
			case 3:
				tick := Tick{TickID: uuid.New(), Now: now}
				d, trig = DecideTimeout(s, tick, params, r.IntN(10) == 0), TriggerTick
			}
			from := None
			if s != nil {
				from = s.State
			}
			if d.State != nil {
				if !Allowed(from, trig, d.State.State) {
					t.Fatalf("seed %d step %d: transition %s --%s--> %s not in the FSM", seed, step, from, trig, d.State.State)
				}
				if d.State.State == Active && !validAck[ids[i]] {
					t.Fatalf("seed %d: node ACTIVE without a valid ack after acceptance", seed)
				}
				for _, in := range d.Intents {
					if !slices.Contains(IntentTypes, in.Type) {
						t.Fatalf("seed %d: intent type %q is not in IntentTypes (the contract's emitted_intents)", seed, in.Type)
					}
					if in.Sequence <= lastSeq[i] {
						t.Fatalf("seed %d: intent sequence %d not above %d", seed, in.Sequence, lastSeq[i])
					}
					lastSeq[i] = in.Sequence
				}
				for _, e := range d.Events {
					st := attempts[d.State.AttemptID]
					switch e.Kind {
					case EventAckTimedOut:
						st.ackTimeouts++
					case EventLivenessExpired:
						st.livenessExpired++
					}
					if st.ackTimeouts > 1 || st.livenessExpired > 1 {
						t.Fatalf("seed %d: attempt %s emitted a timeout twice", seed, d.State.AttemptID)
					}
				}
				if s != nil && s.State.Retriable() && trig == TriggerIntrospection && !d.Emit {
					t.Fatalf("seed %d: node in retriable state %s did not re-register", seed, s.State)
				}
			}
			if !d.Emit && d.State != s {
				t.Fatalf("seed %d: a no-op changed the state", seed)
			}
			states[i] = d.State
		}
	}
}
