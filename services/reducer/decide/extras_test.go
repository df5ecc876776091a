package decide

import (
	"encoding/json"
	"testing"
	"time"
	"unsafe"
)

// An introspection's unknown members (a node newer than the fleet) are kept
// with the node: in its state, which every later decision carries on, and
// in the projection upsert. A registration replaces them: one whose
// introspection has none leaves none (nil, never {}).
func TestIntrospectionExtrasKept(t *testing.T) {
	extras := json.RawMessage(`{"flow_window":{"max_in_flight":8},"declared_capabilities.new_thing":[1,2]}`)
	in := intro()
	in.Extras = extras
	d := DecideIntrospection(nil, in, t0, params)
	if d.State == nil || string(d.State.Extras) != string(extras) {
		t.Fatalf("state extras %s, want %s", d.State.Extras, extras)
	}
	if up := d.Intents[0].Upsert; up == nil || string(up.Extras) != string(extras) {
		t.Fatalf("upsert extras %v, want %s", up, extras)
	}

	// Ack, heartbeats and timeouts keep them.
	st := d.State
	a := DecideAck(st, Ack{NodeID: nodeID, CommandID: corrID}, t0.Add(time.Second), params)
	h := DecideHeartbeat(a.State, Heartbeat{NodeID: nodeID, Timestamp: t0.Add(2 * time.Second)}, t0.Add(2*time.Second), params)
	x := DecideTimeout(h.State, Tick{Now: t0.Add(time.Hour)}, params, false)
	for name, s := range map[string]*NodeState{"ack": a.State, "heartbeat": h.State, "liveness timeout": x.State} {
		if s == nil || string(s.Extras) != string(extras) {
			t.Errorf("after the %s: extras %v, want %s", name, s, extras)
		}
	}
	if x.State.State != LivenessExpired {
		t.Fatalf("no liveness expiry: %s", x.Reason)
	}

	// A repeated identical introspection of an active node changes
	// nothing; one with other extras updates the node in place.
	same := intro()
	same.Extras = extras
	if b := DecideIntrospection(a.State, same, t0.Add(3*time.Second), params); b.Emit || string(b.State.Extras) != string(extras) {
		t.Errorf("identical introspection of an active node: emit %v, extras %s", b.Emit, b.State.Extras)
	}
	again := intro()
	again.Extras = json.RawMessage(`{"other":1}`)
	if b := DecideIntrospection(a.State, again, t0.Add(3*time.Second), params); !b.Emit || string(b.State.Extras) != `{"other":1}` ||
		string(b.Intents[0].Upsert.Extras) != `{"other":1}` || b.State.State != Active {
		t.Errorf("introspection of an active node with other extras: emit %v, extras %s", b.Emit, b.State.Extras)
	}

	// A re-registration replaces them: with new ones...
	r := DecideIntrospection(x.State, again, t0.Add(2*time.Hour), params)
	if !r.Emit || string(r.State.Extras) != `{"other":1}` || string(r.Intents[0].Upsert.Extras) != `{"other":1}` {
		t.Errorf("re-registration with other extras: state %s, upsert %s", r.State.Extras, r.Intents[0].Upsert.Extras)
	}
	// ...and without any: none, in the state and in the upsert (the
	// projector writes {} for it).
	for _, none := range []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`null`)} {
		plain := intro()
		plain.Extras = none
		r := DecideIntrospection(x.State, plain, t0.Add(2*time.Hour), params)
		if !r.Emit || r.State.Extras != nil || r.Intents[0].Upsert.Extras != nil {
			t.Errorf("re-registration with extras %q: state %q, upsert %q, want nil", none, r.State.Extras, r.Intents[0].Upsert.Extras)
		}
	}
}

// The reducer holds a NodeState per node it owns (100,000 and more):
// keeping the extras must not move it into a larger allocation size class
// (288 bytes on 64-bit platforms).
func TestNodeStateSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("size classes checked on 64-bit platforms")
	}
	if n := unsafe.Sizeof(NodeState{}); n > 320 {
		t.Errorf("NodeState is %d bytes, over its 320-byte size class", n)
	}
}
