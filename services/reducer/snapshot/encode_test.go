package snapshot

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

func encodeStates(t testing.TB) map[string]*decide.NodeState {
	full := effectNode(t)
	full.LastHeartbeatAt, full.AckTimeoutEmittedAt, full.LivenessTimeoutEmittedAt = ptr(at.Add(time.Minute)), ptr(at), ptr(at.Add(time.Hour))
	full.NodeName = ptr("<b>\"odd\" & name\u2028\x01\x7f é 😀 \xff")
	full.Endpoints = decide.Endpoints{{Name: "api", URL: "http://h:1/a?x=1&y=<2>"}, {Name: "health", URL: "http://h:1/health"}}
	offset := effectNode(t)
	offset.RegisteredAt = time.Date(2026, 3, 2, 16, 0, 0, 123456789, time.FixedZone("x", 2*3600))
	offset.LastStateChangeAt = offset.RegisteredAt
	bare := active(t, decide.Introspection{NodeID: uuid.New(), NodeType: "compute", NodeVersion: "1.0.0", CorrelationID: uuid.New()})
	html := effectNode(t)
	html.Capabilities = json.RawMessage(`{"note":"a<b"}`) // encoding/json rewrites it: the Build path
	spaced := effectNode(t)
	spaced.Capabilities = json.RawMessage(`{"read": true}`)
	return map[string]*decide.NodeState{"effect": effectNode(t), "mcp orchestrator": mcpOrchestrator(t), "every field, odd strings": full,
		"non-UTC offsets": offset, "no capabilities, no endpoints": bare, "capabilities with HTML characters": html, "capabilities with spaces": spaced}
}

// The direct encoder writes exactly the bytes json.Marshal(Build(...))
// writes.
func TestEncodeMatchesBuild(t *testing.T) {
	for name, st := range encodeStates(t) {
		got, err := Encode(st, at)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := encodeBuilt(st, at)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	if _, ok := appendSnapshot(nil, encodeStates(t)["effect"], at); !ok {
		t.Error("the direct encoder refused an ordinary state")
	}
}

func FuzzEncodeMatchesBuild(f *testing.F) {
	f.Add("sim_effect_0", "http://127.0.0.1:9/x", "1.0.0", []byte(`{"read":true}`), int64(3), int64(0))
	f.Add("a<b>&\u2028\x00", "h\xff\"\\", "2.0.0-rc.1", []byte(`{"a":"é"}`), int64(-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, name, url, version string, caps []byte, seq, nanos int64) {
		st := effectNode(t)
		st.NodeName, st.NodeVersion, st.Sequence = &name, version, seq
		st.Endpoints = decide.Endpoints{{Name: "api", URL: url}}
		if json.Valid(caps) {
			st.Capabilities = caps
		}
		ts := time.Unix(0, nanos).UTC()
		st.LastHeartbeatAt = &ts
		got, err := Encode(st, at)
		want, werr := encodeBuilt(st, at)
		if (err == nil) != (werr == nil) || string(got) != string(want) {
			t.Fatalf("direct %s (%v)\nBuild  %s (%v)", got, err, want, werr)
		}
	})
}
