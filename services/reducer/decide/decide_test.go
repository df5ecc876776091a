package decide

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
		same    bool // the state holds what the introspection declares
		emit    bool
		reason  string
		toState State
	}{
		{None, false, true, "Registration initiated", AwaitingAck},
		{LivenessExpired, false, true, "Registration initiated", AwaitingAck},
		{Rejected, false, true, "Registration initiated", AwaitingAck},
		{AckTimedOut, false, true, "Registration initiated", AwaitingAck},
		{AwaitingAck, true, false, "Waiting for ack", AwaitingAck},
		// A node that restarted (or changed) before it acked: a new attempt.
		{AwaitingAck, false, true, ReasonReregistered, AwaitingAck},
		{Accepted, false, true, ReasonReregistered, AwaitingAck},
		{PendingRegistration, false, false, "State pending_registration blocks new registration", PendingRegistration},
		{Accepted, true, false, "State accepted blocks new registration", Accepted},
		{AckReceived, false, false, "State ack_received blocks new registration", AckReceived},
		// active: updated in place (TestDecideIntrospectionActiveTable)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s same=%v", tt.from, tt.same), func(t *testing.T) {
			in := inState(tt.from)
			if tt.same {
				in.NodeVersion, in.Endpoints = "1.2.0", EndpointsOf(intro().Endpoints)
			}
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

// An introspection whose node type the projection cannot hold
// (runtime_host): one row per state (docs/reducer.md, Decisions). Where an
// introspection would start a registration it is rejected instead, with no
// intent; where it would not, it changes nothing, as any introspection.
func TestDecideIntrospectionRejectedTable(t *testing.T) {
	host := intro()
	host.NodeType = "runtime_host"
	host.HandlerCorrelationID = uuid.MustParse("0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5")
	reason := "node type runtime_host is not registered by this registry: it is not projectable " +
		"(the registration projection accepts only effect, compute, reducer, orchestrator nodes)"
	tests := []struct {
		from    State
		emit    bool
		reason  string
		toState State
	}{
		{None, true, "Registration rejected: node type runtime_host is not projectable", Rejected},
		{LivenessExpired, true, "Registration rejected: node type runtime_host is not projectable", Rejected},
		{Rejected, true, "Registration rejected: node type runtime_host is not projectable", Rejected},
		{AckTimedOut, true, "Registration rejected: node type runtime_host is not projectable", Rejected},
		{AwaitingAck, false, "Waiting for ack", AwaitingAck},
		{PendingRegistration, false, "State pending_registration blocks new registration", PendingRegistration},
		{Accepted, false, "State accepted blocks new registration", Accepted},
		{AckReceived, false, "State ack_received blocks new registration", AckReceived},
		{Active, false, "State active blocks new registration", Active},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			in := inState(tt.from)
			d := DecideIntrospection(in, host, t0, params)
			if d.Emit != tt.emit || d.Reason != tt.reason || d.State.State != tt.toState {
				t.Fatalf("got emit=%v reason=%q state=%s; want %v %q %s", d.Emit, d.Reason, d.State.State, tt.emit, tt.reason, tt.toState)
			}
			if !Allowed(tt.from, TriggerIntrospection, d.State.State) {
				t.Fatalf("%s --introspection--> %s is not in the FSM table", tt.from, d.State.State)
			}
			ev, it := kinds(d)
			if !tt.emit {
				if len(ev)+len(it) != 0 || d.State != in {
					t.Fatalf("no-op emitted %v %v or changed the state", ev, it)
				}
				return
			}
			if !eq(ev, []EventKind{EventRejected}) || len(it) != 0 {
				t.Fatalf("outputs %v %v, want [%s] and no intent", ev, it, EventRejected)
			}
			e := d.Events[0]
			if e.NodeID != nodeID || e.CorrelationID != host.HandlerCorrelationID || e.CausationID != corrID || !e.EmittedAt.Equal(t0) || e.RejectionReason != reason {
				t.Errorf("rejected event %+v", e)
			}
			ns := d.State
			if ns.NodeType != "runtime_host" || ns.CorrelationID != host.HandlerCorrelationID || ns.AttemptID != attemptID(host) ||
				ns.AckDeadline != nil || ns.NextResendAt != nil || ns.LivenessDeadline != nil || ns.Endpoints != nil || ns.MCPTool != nil {
				t.Errorf("rejected state %+v", ns)
			}
			if _, due := pendingDeadline(ns); due {
				t.Error("a rejected node has a deadline")
			}
			wantSeq, wantReg, wantChange := int64(1), time.Time{}, t0
			if in != nil {
				wantSeq, wantReg = in.Sequence+1, in.RegisteredAt
			}
			if tt.from == Rejected {
				wantChange = in.LastStateChangeAt // still rejected: the first rejection's
			}
			if ns.Sequence != wantSeq || !ns.RegisteredAt.Equal(wantReg) || !ns.LastStateChangeAt.Equal(wantChange) {
				t.Errorf("sequence %d registered_at %v last change %v; want %d %v %v", ns.Sequence, ns.RegisteredAt, ns.LastStateChangeAt, wantSeq, wantReg, wantChange)
			}
			if in != nil && in.State != tt.from {
				t.Fatal("decision mutated its input state")
			}
		})
	}
}

// pendingDeadline mirrors what the partition's deadline index watches
// (internal/state.PendingDeadline).
func pendingDeadline(s *NodeState) (time.Time, bool) {
	switch {
	case (s.State == Accepted || s.State == AwaitingAck) && s.AckDeadline != nil:
		return *s.AckDeadline, true
	case s.State == Active && s.LivenessDeadline != nil:
		return *s.LivenessDeadline, true
	}
	return time.Time{}, false
}

// A duplicated or replayed rejected introspection is answered the same way,
// and a later introspection of a projectable type registers the node.
func TestRejectedIsAnsweredAgainAndRetriable(t *testing.T) {
	host := intro()
	host.NodeType = "runtime_host"
	first := DecideIntrospection(nil, host, t0, params)
	again := DecideIntrospection(first.State, host, t0.Add(time.Minute), params)
	if again.State.State != Rejected || len(again.Events) != 1 || again.Events[0].Kind != EventRejected {
		t.Fatalf("duplicate: %+v", again)
	}
	a, b := first.Events[0], again.Events[0]
	b.EmittedAt = a.EmittedAt
	if !reflect.DeepEqual(a, b) {
		t.Errorf("duplicate answered %+v, first %+v", b, a)
	}
	if !again.State.LastStateChangeAt.Equal(t0) || again.State.Sequence != 2 {
		t.Errorf("duplicate state: last change %v sequence %d; want %v 2", again.State.LastStateChangeAt, again.State.Sequence, t0)
	}
	if replay := DecideIntrospection(nil, host, t0, params); !reflect.DeepEqual(replay, first) {
		t.Error("the same input decided twice differs")
	}
	eff := intro()
	eff.CorrelationID = uuid.MustParse("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
	reg := DecideIntrospection(again.State, eff, t0.Add(2*time.Minute), params)
	if reg.State.State != AwaitingAck || reg.State.NodeType != "effect" || !reg.State.RegisteredAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("re-registration from rejected: %s %s registered_at %v", reg.State.State, reg.State.NodeType, reg.State.RegisteredAt)
	}
	if reg.Intents[0].Sequence != 3 || reg.Intents[0].Upsert.NodeType != "effect" || !reg.Intents[0].Upsert.RegisteredAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("upsert after rejection: sequence %d %+v", reg.Intents[0].Sequence, reg.Intents[0].Upsert)
	}
	for _, nt := range ProjectionNodeTypes {
		if !Projectable(nt) {
			t.Errorf("%s not projectable", nt)
		}
	}
	if Projectable("runtime_host") || Projectable("") {
		t.Error("runtime_host or empty projectable")
	}
	if r := RejectionReason(strings.Repeat("é", 2000)); utf8.RuneCountInString(r) != MaxRejectionReason || !utf8.ValidString(r) {
		t.Errorf("a long reason is %d characters, want %d", utf8.RuneCountInString(r), MaxRejectionReason)
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
			if !eq(ev, []EventKind{EventAckReceived, EventBecameActive}) || !eq(it, []IntentType{IntentPostgresUpdate, IntentConsulRegister}) {
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
			if r := d.Intents[1].Register; r == nil || r.Health != "passing" || d.Intents[1].Sequence != d.Intents[0].Sequence+1 {
				t.Errorf("ack register %+v (sequence %d): want the node's service, passing, after the update", r, d.Intents[1].Sequence)
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
	resends := map[Trigger]int{}
	defer func() {
		if resends[TriggerTick] == 0 || resends[TriggerHeartbeat] == 0 || resends[TriggerIntrospection] == 0 {
			t.Errorf("the random inputs re-emitted accepted events %v: every trigger should", resends)
		}
	}()
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7))
		const nodes = 8
		ids := make([]uuid.UUID, nodes)
		states := make([]*NodeState, nodes)
		for i := range ids {
			ids[i] = uuid.NewSHA1(uuid.Nil, []byte(fmt.Sprint(seed, i)))
		}
		params := params
		if seed%5 == 0 {
			params.AcceptedResendInitial = 0 // resends disabled
		}
		type attemptStats struct {
			ackTimeouts, livenessExpired int
			accepted                     []Event
		}
		attempts := map[uuid.UUID]*attemptStats{}
		validAck := map[uuid.UUID]bool{} // node -> acked in its current attempt
		lastSeq := make([]int64, nodes)
		now := t0
		for step := 0; step < 400; step++ {
			now = now.Add(time.Duration(r.IntN(20000)) * time.Millisecond)
			i := r.IntN(nodes)
			s := states[i]
			var d Decision
			var trig Trigger
			introReason := ""
			switch r.IntN(4) {
			case 0:
				in := intro()
				in.NodeID, in.CorrelationID, in.HandlerCorrelationID = ids[i], uuid.NewSHA1(ids[i], []byte(fmt.Sprint(step))), uuid.Nil
				if r.IntN(6) == 0 {
					in.NodeType = "runtime_host" // valid, not projectable: rejected
				}
				// Reasons and producer timestamps, some late: restarts,
				// updates in place, shutdowns, stale introspections.
				in.Reason = []string{"", ReasonStartup, ReasonShutdown, "capability_change", "heartbeat"}[r.IntN(5)]
				if r.IntN(2) == 0 {
					in.NodeVersion = fmt.Sprintf("1.%d.0", r.IntN(3))
				}
				if seed%2 == 0 {
					in.Timestamp = now.Add(-time.Duration(r.IntN(30)) * time.Second)
				}
				introReason = in.Reason
				d, trig = DecideIntrospection(s, in, now, params), TriggerIntrospection
				if d.Emit && (d.State.State == AwaitingAck || d.State.State == Rejected) {
					attempts[d.State.AttemptID] = &attemptStats{}
					validAck[ids[i]] = false
				}
				if s != nil && d.State != nil && d.State.LastIntrospectionAt.Before(s.LastIntrospectionAt) {
					t.Fatalf("seed %d: last introspection went back from %v to %v", seed, s.LastIntrospectionAt, d.State.LastIntrospectionAt)
				}
				if d.Emit && staleIntrospection(s, in) {
					t.Fatalf("seed %d: stale introspection applied (%s)", seed, d.Reason)
				}
				if in.Reason == ReasonShutdown && d.Reason != ReasonStale && d.State != nil && (d.State.State == Active || d.State.State == AwaitingAck || d.State.State == Accepted) {
					t.Fatalf("seed %d: node %s after its shutdown", seed, d.State.State)
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
				if d.State.State == Rejected && (len(d.Intents) != 0 || d.State.NodeType != "runtime_host") {
					t.Fatalf("seed %d: rejected %s node with intents %v", seed, d.State.NodeType, d.Intents)
				}
				for _, e := range d.Events {
					st := attempts[d.State.AttemptID]
					switch e.Kind {
					case EventRejected:
						if d.State.State != Rejected || e.RejectionReason == "" {
							t.Fatalf("seed %d: rejected event in state %s", seed, d.State.State)
						}
					case EventAckTimedOut:
						st.ackTimeouts++
					case EventLivenessExpired:
						st.livenessExpired++
					case EventAccepted:
						// Every copy of an attempt's accepted event carries
						// its correlation id and ack deadline, is emitted
						// while the node awaits its ack, by its deadline,
						// and more than the initial interval after the
						// previous copy; resends only when enabled.
						if n := len(st.accepted); n > 0 {
							prev := st.accepted[n-1]
							if e.ResentBy == "" || params.AcceptedResendInitial == 0 {
								t.Fatalf("seed %d: attempt %s emitted accepted again (%s) with resends %v", seed, d.State.AttemptID, d.Reason, params.AcceptedResendInitial)
							}
							if e.CorrelationID != prev.CorrelationID || !e.AckDeadline.Equal(prev.AckDeadline) {
								t.Fatalf("seed %d: resend of attempt %s with correlation %s deadline %v, first %s %v", seed, d.State.AttemptID, e.CorrelationID, e.AckDeadline, prev.CorrelationID, prev.AckDeadline)
							}
							if gap := e.EmittedAt.Sub(prev.EmittedAt); gap <= params.AcceptedResendInitial {
								t.Fatalf("seed %d: accepted re-sent %s after the previous copy", seed, gap)
							}
						}
						if e.EmittedAt.After(e.AckDeadline) || (d.State.State != AwaitingAck && d.State.State != Accepted) {
							t.Fatalf("seed %d: accepted emitted at %v (deadline %v) in state %s", seed, e.EmittedAt, e.AckDeadline, d.State.State)
						}
						st.accepted = append(st.accepted, e)
						if e.ResentBy != "" {
							resends[e.ResentBy]++
						}
					}
					if st.ackTimeouts > 1 || st.livenessExpired > 1 {
						t.Fatalf("seed %d: attempt %s emitted a timeout twice", seed, d.State.AttemptID)
					}
				}
				if s != nil && s.State.Retriable() && trig == TriggerIntrospection && !d.Emit && introReason != ReasonShutdown && d.Reason != ReasonStale {
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

// The accepted event again while a node awaits its ack (docs/reducer.md,
// "Accepted resends"): one row per line of the Decisions table's resend
// rows, and the rows around them.
func TestAcceptedResendTable(t *testing.T) {
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// registered at t0: ack deadline t0+30 s, first resend due after t0+2 s.
	registered := func() *NodeState { return DecideIntrospection(nil, intro(), t0, params).State }
	resentAt := func(at float64) *NodeState { // registered, then resent by a tick at t0+at
		d := DecideTimeout(registered(), Tick{TickID: uuid.New(), Now: sec(at)}, params, false)
		if len(d.Events) != 1 {
			t.Fatalf("setup: no resend at %v s: %s", at, d.Reason)
		}
		return d.State
	}
	legacy := func() *NodeState { // restored from a snapshot written before resends
		s := registered()
		s.NextResendAt = nil
		return s
	}
	accepted := func() *NodeState { s := registered(); s.State = Accepted; return s }
	tickID, hbCorr, introCorr := uuid.New(), uuid.New(), uuid.New()
	noResends := params
	noResends.AcceptedResendInitial = 0

	type input struct {
		trig Trigger
		at   float64
		p    Params
		hb   *Heartbeat // heartbeat input; default: correlation hbCorr, timestamp = now
	}
	tests := []struct {
		name     string
		s        *NodeState
		in       input
		reason   string
		to       State
		resent   bool      // one accepted event re-emitted
		cause    uuid.UUID // its causation id
		next     float64   // the next resend afterwards (seconds after t0; 0: unchanged)
		intents  []IntentType
		deadline bool // next resend set to the ack deadline
	}{
		{name: "tick before the first resend", s: registered(), in: input{trig: TriggerTick, at: 1.5},
			reason: "No timeouts detected", to: AwaitingAck},
		{name: "tick at the resend time is not after it", s: registered(), in: input{trig: TriggerTick, at: 2},
			reason: "No timeouts detected", to: AwaitingAck},
		{name: "tick after the first resend time", s: registered(), in: input{trig: TriggerTick, at: 2.5},
			reason: "Accepted re-sent", to: AwaitingAck, resent: true, cause: tickID, next: 6},
		{name: "tick in accepted state", s: accepted(), in: input{trig: TriggerTick, at: 3},
			reason: "Accepted re-sent", to: Accepted, resent: true, cause: tickID, next: 6},
		{name: "second resend, interval doubled", s: resentAt(2.5), in: input{trig: TriggerTick, at: 6.5},
			reason: "Accepted re-sent", to: AwaitingAck, resent: true, cause: tickID, next: 14},
		{name: "tick before the second resend", s: resentAt(2.5), in: input{trig: TriggerTick, at: 5.9},
			reason: "No timeouts detected", to: AwaitingAck},
		{name: "late resend: the next one is at least the initial interval later", s: registered(), in: input{trig: TriggerTick, at: 5},
			reason: "Accepted re-sent", to: AwaitingAck, resent: true, cause: tickID, next: 14},
		{name: "interval capped at the maximum", s: resentAt(14.5), in: input{trig: TriggerTick, at: 22.5},
			reason: "Accepted re-sent", to: AwaitingAck, resent: true, cause: tickID, next: 30},
		{name: "at the ack deadline, not past it", s: resentAt(22.5), in: input{trig: TriggerTick, at: 30},
			reason: "No timeouts detected", to: AwaitingAck},
		{name: "resend due at the ack deadline itself", s: resentAt(20), in: input{trig: TriggerTick, at: 30},
			reason: "Accepted re-sent", to: AwaitingAck, resent: true, cause: tickID, next: 38},
		{name: "past the ack deadline the timeout wins", s: resentAt(20), in: input{trig: TriggerTick, at: 30.5},
			reason: "Ack deadline passed", to: AckTimedOut, intents: []IntentType{IntentPostgresUpdate, IntentConsulDeregister}},
		{name: "snapshot without a schedule: due at once", s: legacy(), in: input{trig: TriggerTick, at: 0.5},
			reason: "Accepted re-sent", to: AwaitingAck, resent: true, cause: tickID, next: 6},
		{name: "resends disabled: rescheduled to the deadline", s: registered(), in: input{trig: TriggerTick, at: 2.5, p: noResends},
			reason: "Accepted resends disabled", to: AwaitingAck, deadline: true},
		{name: "resends disabled from the start", s: DecideIntrospection(nil, intro(), t0, noResends).State, in: input{trig: TriggerTick, at: 29, p: noResends},
			reason: "No timeouts detected", to: AwaitingAck},

		{name: "heartbeat before the resend time", s: registered(), in: input{trig: TriggerHeartbeat, at: 1},
			reason: "Heartbeat recorded", to: AwaitingAck, intents: []IntentType{IntentPostgresUpdate}},
		{name: "heartbeat after the resend time", s: registered(), in: input{trig: TriggerHeartbeat, at: 2.5},
			reason: "Heartbeat recorded, accepted re-sent", to: AwaitingAck, resent: true, cause: hbCorr, next: 6, intents: []IntentType{IntentPostgresUpdate}},
		{name: "heartbeat without correlation id", s: registered(), in: input{trig: TriggerHeartbeat, at: 2.5, hb: &Heartbeat{NodeID: nodeID, Timestamp: sec(2.4)}},
			reason: "Heartbeat recorded, accepted re-sent", to: AwaitingAck, resent: true,
			cause: uuid.NewSHA1(nodeID, []byte("heartbeat:"+sec(2.4).Format(time.RFC3339Nano))), next: 6, intents: []IntentType{IntentPostgresUpdate}},
		{name: "heartbeat past the ack deadline", s: registered(), in: input{trig: TriggerHeartbeat, at: 31},
			reason: "Heartbeat recorded", to: AwaitingAck, intents: []IntentType{IntentPostgresUpdate}},
		{name: "heartbeat, resends disabled", s: registered(), in: input{trig: TriggerHeartbeat, at: 2.5, p: noResends},
			reason: "Heartbeat recorded", to: AwaitingAck, intents: []IntentType{IntentPostgresUpdate}},
		{name: "stale heartbeat", s: func() *NodeState { s := registered(); s.LastHeartbeatAt = ptr(sec(5)); return s }(),
			in:     input{trig: TriggerHeartbeat, at: 6, hb: &Heartbeat{NodeID: nodeID, Timestamp: sec(4), CorrelationID: hbCorr}},
			reason: "Stale heartbeat", to: AwaitingAck},

		{name: "introspection before the resend time", s: registered(), in: input{trig: TriggerIntrospection, at: 1},
			reason: "Waiting for ack", to: AwaitingAck},
		{name: "introspection after the resend time", s: registered(), in: input{trig: TriggerIntrospection, at: 3},
			reason: "Waiting for ack, accepted re-sent", to: AwaitingAck, resent: true, cause: introCorr, next: 6},
		{name: "introspection past the ack deadline", s: registered(), in: input{trig: TriggerIntrospection, at: 31},
			reason: "Waiting for ack", to: AwaitingAck},
		{name: "introspection in accepted state blocks as before", s: accepted(), in: input{trig: TriggerIntrospection, at: 3},
			reason: "State accepted blocks new registration", to: Accepted},

		{name: "ack after a resend", s: resentAt(2.5), in: input{trig: TriggerAck, at: 4},
			reason: "Ack received, transitioning to ACTIVE", to: Active, intents: []IntentType{IntentPostgresUpdate, IntentConsulRegister}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params
			if tt.in.p != (Params{}) {
				p = tt.in.p
			}
			now := sec(tt.in.at)
			before, _ := json.Marshal(tt.s)
			beforeNext := tt.s.NextResendAt
			var d Decision
			switch tt.in.trig {
			case TriggerTick:
				d = DecideTimeout(tt.s, Tick{TickID: tickID, CorrelationID: uuid.New(), Now: now}, p, false)
			case TriggerHeartbeat:
				hb := Heartbeat{NodeID: nodeID, Timestamp: now, CorrelationID: hbCorr}
				if tt.in.hb != nil {
					hb = *tt.in.hb
				}
				d = DecideHeartbeat(tt.s, hb, now, p)
			case TriggerIntrospection:
				in := intro()
				in.CorrelationID, in.HandlerCorrelationID = introCorr, uuid.New()
				d = DecideIntrospection(tt.s, in, now, p)
			case TriggerAck:
				d = DecideAck(tt.s, Ack{NodeID: nodeID, CommandID: uuid.New(), CorrelationID: corrID, Timestamp: now}, now, p)
			}
			if d.Reason != tt.reason || d.State.State != tt.to {
				t.Fatalf("got %q %s; want %q %s", d.Reason, d.State.State, tt.reason, tt.to)
			}
			if after, _ := json.Marshal(tt.s); string(after) != string(before) || tt.s.NextResendAt != beforeNext {
				t.Fatal("decision mutated its input state")
			}
			ev, it := kinds(d)
			if !eq(it, tt.intents) {
				t.Errorf("intents %v, want %v", it, tt.intents)
			}
			switch {
			case tt.resent:
				if len(d.Events) != 1 || !d.Emit {
					t.Fatalf("events %v, want one accepted", ev)
				}
				e := d.Events[0]
				if e.Kind != EventAccepted || e.NodeID != nodeID || e.CorrelationID != tt.s.CorrelationID || !e.AckDeadline.Equal(*tt.s.AckDeadline) ||
					!e.EmittedAt.Equal(now) || e.CausationID != tt.cause || e.ResentBy != tt.in.trig {
					t.Errorf("re-emitted %+v; want the attempt's correlation %s and deadline %v, emitted now, caused by %s", e, tt.s.CorrelationID, tt.s.AckDeadline, tt.cause)
				}
				if d.State.NextResendAt == nil || !d.State.NextResendAt.Equal(sec(tt.next)) {
					t.Errorf("next resend %v, want t0+%vs", d.State.NextResendAt, tt.next)
				}
				if d.State.Sequence != tt.s.Sequence+int64(len(d.Intents)) {
					t.Error("a resend must not take an intent sequence number")
				}
			case tt.to == AwaitingAck || tt.to == Accepted:
				for _, k := range ev {
					if k == EventAccepted {
						t.Fatalf("accepted re-emitted (%s)", d.Reason)
					}
				}
				switch {
				case tt.deadline:
					if !d.Emit || d.State.NextResendAt == nil || !d.State.NextResendAt.Equal(*d.State.AckDeadline) {
						t.Errorf("next resend %v, want the ack deadline %v", d.State.NextResendAt, d.State.AckDeadline)
					}
				case !d.Emit:
					if d.State != tt.s {
						t.Error("a no-op returned another state")
					}
				default:
					if !NextResend(d.State).Equal(NextResend(tt.s)) {
						t.Errorf("next resend moved to %v without a resend", NextResend(d.State))
					}
				}
			default: // left awaiting its ack: no schedule kept
				if d.State.NextResendAt != nil {
					t.Errorf("%s keeps a resend schedule", d.State.State)
				}
			}
		})
	}
}

// A duplicate ack (a node acks every accepted event it sees, resends
// included) changes nothing.
func TestDuplicateAckAfterResends(t *testing.T) {
	s := DecideIntrospection(nil, intro(), t0, params).State
	s = DecideTimeout(s, Tick{TickID: uuid.New(), Now: t0.Add(3 * time.Second)}, params, false).State
	a := DecideAck(s, Ack{NodeID: nodeID, CommandID: uuid.New(), CorrelationID: corrID}, t0.Add(4*time.Second), params)
	if a.State.State != Active {
		t.Fatalf("ack: %s", a.Reason)
	}
	for i := 0; i < 2; i++ {
		if d := DecideAck(a.State, Ack{NodeID: nodeID, CommandID: uuid.New(), CorrelationID: corrID}, t0.Add(5*time.Second), params); d.Emit || d.Reason != "Duplicate ack" || d.State != a.State {
			t.Fatalf("duplicate ack: %v %q", d.Emit, d.Reason)
		}
	}
}

func TestResendAfter(t *testing.T) {
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	custom := func(initial, max time.Duration) Params {
		p := params
		p.AcceptedResendInitial, p.AcceptedResendMax = initial, max
		return p
	}
	tests := []struct {
		now  float64
		p    Params
		want float64
	}{
		{0, params, 2},     // the schedule: +2, +6, +14, +22, +30, +38 ...
		{2.5, params, 6},   // 6 ≥ 2.5+2
		{4, params, 6},     // exactly one initial interval later
		{4.1, params, 14},  // 6 is too soon after 4.1
		{6.5, params, 14},  //
		{14.5, params, 22}, // capped at 8 s
		{22.5, params, 30}, //
		{100, params, 102}, // 30+8k: the first ≥ 102 is 102
		{101, params, 110},
		{0, custom(time.Second, 500*time.Millisecond), 1}, // a maximum below the initial interval is the initial interval
		{1.5, custom(time.Second, 500*time.Millisecond), 3},
		{0, custom(time.Second, time.Hour), 1}, // 1, 3, 7, 15, 31, 63
		{20, custom(time.Second, time.Hour), 31},
		{40, custom(time.Second, time.Hour), 63},
	}
	for _, tt := range tests {
		if got := ResendAfter(t0, sec(tt.now), tt.p); !got.Equal(sec(tt.want)) {
			t.Errorf("ResendAfter(now=t0+%vs, %v/%v) = t0+%vs, want t0+%vs", tt.now, tt.p.AcceptedResendInitial, tt.p.AcceptedResendMax, got.Sub(t0).Seconds(), tt.want)
		}
	}
	// An emission far in the past costs no loop and does not overflow.
	if got, now := ResendAfter(time.Time{}, t0, params), t0; got.Before(now.Add(2*time.Second)) || got.After(now.Add(10*time.Second)) {
		t.Errorf("ResendAfter from the zero time = %v", got)
	}
}
