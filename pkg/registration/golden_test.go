package registration

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/testkit"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// The current wire format is the pinned Python package's (omnibase-infra
// 0.38.76): interop/golden holds records it produced, interop/schemas the
// JSON Schemas of its models. The fixtures in ../shared/fixtures
// (fixtures_test.go) are an older version, the compatibility floor.

func readGolden(t testing.TB, name string) []byte { return testkit.Golden(t, name) }

// goldenPayload returns the raw payload bytes of an envelope golden.
func goldenPayload(t testing.TB, name string) []byte {
	t.Helper()
	env, err := envelope.Decode(readGolden(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return env.Payload
}

// goldenModel is a model a current golden record carries, with its strict
// and tolerant decoders.
type goldenModel struct {
	file      string
	enveloped bool
	decode    func([]byte) (json.Marshaler, error)
	tolerant  func([]byte) (json.Marshaler, []pyjson.Unknown, error) // nil: no tolerant decoder
}

func tolerantOf[T json.Marshaler](f func([]byte) (T, []pyjson.Unknown, error)) func([]byte) (json.Marshaler, []pyjson.Unknown, error) {
	return func(b []byte) (json.Marshaler, []pyjson.Unknown, error) { return f(b) }
}

func strictOf[T json.Marshaler](f func([]byte) (T, error)) func([]byte) (json.Marshaler, error) {
	return func(b []byte) (json.Marshaler, error) { return f(b) }
}

var goldenModels = []goldenModel{
	{"introspection-effect.json", true, strictOf(DecodeIntrospectionEvent), tolerantOf(DecodeIntrospectionEventTolerant)},
	{"introspection-request-answer.json", true, strictOf(DecodeIntrospectionEvent), tolerantOf(DecodeIntrospectionEventTolerant)},
	{"heartbeat.json", true, strictOf(DecodeHeartbeatEvent), tolerantOf(DecodeHeartbeatEventTolerant)},
	{"heartbeat-flow-window.json", true, strictOf(DecodeHeartbeatEvent), tolerantOf(DecodeHeartbeatEventTolerant)},
	{"ack.json", true, strictOf(DecodeRegistrationAcked), tolerantOf(DecodeRegistrationAckedTolerant)},
	{"accepted.json", false, strictOf(DecodeRegistrationAccepted), nil},
	{"runtime-tick.json", true, strictOf(DecodeRuntimeTick), nil},
	{"topic-catalog-query.json", true, strictOf(DecodeTopicCatalogQuery), nil},
}

// Every model the current Python package put in a golden record decodes
// and re-encodes byte for byte (Python field order, every field), and the
// node-originated ones decode tolerantly to the same value with nothing
// unknown.
func TestCurrentGoldenPayloadsReencodeExactly(t *testing.T) {
	for _, g := range goldenModels {
		t.Run(g.file, func(t *testing.T) {
			raw := readGolden(t, g.file)
			if g.enveloped {
				raw = goldenPayload(t, g.file)
			}
			m, err := g.decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, raw) {
				t.Fatalf("re-encoded payload differs\n got: %s\nwant: %s", out, raw)
			}
			if g.tolerant == nil {
				return
			}
			tm, unknown, err := g.tolerant(raw)
			if err != nil || len(unknown) != 0 {
				t.Fatalf("tolerant decode: unknown %v, err %v", unknown, err)
			}
			if !reflect.DeepEqual(tm, m) {
				t.Fatalf("tolerant decode differs:\n%+v\n%+v", tm, m)
			}
		})
	}
}

// The goldens' values, read the way the fleet reads them.
func TestCurrentGoldenValues(t *testing.T) {
	t.Run("heartbeat-flow-window", func(t *testing.T) {
		hb, err := DecodeHeartbeatEvent(goldenPayload(t, "heartbeat-flow-window.json"))
		if err != nil {
			t.Fatal(err)
		}
		fw := hb.FlowWindow
		if fw == nil || fw.NodeID.String() != nodeID || fw.WindowSequence != 1 || len(fw.ConsumerDeltas) != 1 || len(fw.ProduceDeltas) != 1 {
			t.Fatalf("flow window %+v", fw)
		}
		cd, pd := fw.ConsumerDeltas[0], fw.ProduceDeltas[0]
		if cd.ConsumerGroup != "local.node_registry_effect.consume.1.0.0" || cd.MessagesIn != 3 || cd.MessagesOut != 3 ||
			cd.DeclaresOutput == nil || !*cd.DeclaresOutput || !cd.WindowEnd.Equal(fw.WindowEnd.Time) {
			t.Errorf("consumer delta %+v", cd)
		}
		if pd.Topic != "onex.cmd.platform.node-registration-acked.v1" || pd.MessagesProduced != 3 {
			t.Errorf("produce delta %+v", pd)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		hb, err := DecodeHeartbeatEvent(goldenPayload(t, "heartbeat.json"))
		if err != nil || hb.FlowWindow != nil || hb.NodeID.String() != nodeID {
			t.Fatalf("%+v %v", hb, err)
		}
	})
	t.Run("accepted, either form", func(t *testing.T) {
		a, err := DecodeRegistrationAccepted(readGolden(t, "accepted.json"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeRegistrationAccepted(readGolden(t, "accepted-compact.json"))
		if err != nil || !reflect.DeepEqual(a, c) {
			t.Fatalf("compact form %+v %v, want %+v", c, err, a)
		}
	})
	t.Run("ticks, enveloped now", func(t *testing.T) {
		tick, err := DecodeTick(readGolden(t, "runtime-tick.json"))
		if err != nil || tick.SequenceNumber != 1 || tick.SchedulerID != "runtime-scheduler-default" {
			t.Fatalf("%+v %v", tick, err)
		}
	})
	t.Run("request-introspection", func(t *testing.T) {
		r, err := DecodeRequestIntrospection(readGolden(t, "request-introspection-targeted.json"))
		if err != nil || r.TargetNodeID == nil || *r.TargetNodeID != nodeID || !r.AddressedTo(uuid.MustParse(nodeID)) || r.AddressedTo(uuid.New()) {
			t.Fatalf("%+v %v", r, err)
		}
		r, err = DecodeRequestIntrospection(readGolden(t, "request-introspection-untargeted.json"))
		if err != nil || r.TargetNodeID != nil || r.CorrelationID == nil {
			t.Fatalf("%+v %v", r, err)
		}
		// The catalog request is an envelope: to a node, an untargeted
		// request with the envelope's correlation id.
		r, err = DecodeRequestIntrospection(readGolden(t, "request-introspection-catalog-request.json"))
		if err != nil || r.TargetNodeID != nil || r.CorrelationID == nil || r.CorrelationID.String() != "4c5d6e7f-8091-4a2b-9c3d-4e5f6a7b8c9d" {
			t.Fatalf("%+v %v", r, err)
		}
	})
}

// withFieldsNull inserts `"name": null, ` before the key before in an old
// fixture payload: the fields added since the fixtures were recorded, as
// the encoder now writes them.
func withFieldsNull(t testing.TB, payload []byte, before string, names ...string) []byte {
	t.Helper()
	s := string(payload)
	i := strings.Index(s, `"`+before+`": `)
	if i < 0 {
		t.Fatalf("payload has no %q", before)
	}
	var add strings.Builder
	for _, n := range names {
		add.WriteString(`"` + n + `": null, `)
	}
	return []byte(s[:i] + add.String() + s[i:])
}
