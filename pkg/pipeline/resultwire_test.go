package pipeline

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/envelope"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

func TestEffectResultContentType(t *testing.T) {
	if EffectResultContentType != "application/x-protobuf; messageType=onex.fleet.v1.EffectResult" {
		t.Errorf("EffectResultContentType = %q", EffectResultContentType)
	}
}

// resultRecords are the results the effects and the orchestrator write: a
// success, a stale skip, a retriable failure with its error, a failure
// with empty error strings, and one with only the identity fields.
func resultRecords(t testing.TB) map[string]EffectResultRecord {
	t.Helper()
	node, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	at := time.Date(2026, 3, 2, 14, 5, 7, 401122000, time.UTC)
	mk := func(typ string, seq int64, f func(*EffectResult)) EffectResultRecord {
		res := &EffectResult{IntentID: uuid.New(), IntentType: typ, Backend: Backend(typ), NodeID: node, CorrelationID: corr,
			RegistrationAttemptID: attempt, Sequence: seq, Attempt: 1, Success: true, DurationMS: 3.25, BackendID: "pg-1",
			Completed: T(at)}
		if f != nil {
			f(res)
		}
		return EffectResultRecord{Result: res, EnvelopeID: uuid.NewSHA1(res.IntentID, []byte("effect-result")), CreatedAt: at.Add(time.Millisecond)}
	}
	text, code, empty := "postgres operation failed: connection refused", "POSTGRES_CONNECTION_ERROR", ""
	return map[string]EffectResultRecord{
		"success": mk(PostgresUpsert, 1, nil),
		"stale":   mk(PostgresUpdate, 3, func(r *EffectResult) { r.Stale = true }),
		"retriable failure": mk(ConsulRegister, 2, func(r *EffectResult) {
			r.Success, r.Retriable, r.Error, r.ErrorCode, r.Attempt, r.BackendID = false, true, &text, &code, 4, "consul-agent"
		}),
		"failure with empty strings": mk(ConsulDeregister, 4, func(r *EffectResult) {
			r.Success, r.Error, r.ErrorCode = false, &empty, &empty
		}),
		"identity only": {Result: &EffectResult{IntentID: uuid.New(), IntentType: PostgresUpsert, Backend: "postgres", NodeID: node}},
	}
}

// Both forms of every result decode, by content type, to the same result
// and envelope fields.
func TestEffectResultBothFormsDecodeTheSame(t *testing.T) {
	for name, rec := range resultRecords(t) {
		t.Run(name, func(t *testing.T) {
			pb, err := MarshalEffectResult(rec)
			if err != nil {
				t.Fatal(err)
			}
			fromPB, err := DecodeEffectResultRecord(header(EffectResultContentType), pb)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromPB, rec) {
				t.Errorf("protobuf form %+v\nwant %+v", fromPB, rec)
			}
			js, err := MarshalEffectResultJSON(rec)
			if err != nil {
				t.Fatal(err)
			}
			for _, hs := range [][]byte{nil, []byte(ContentTypeJSON), []byte("application/json; charset=utf-8")} {
				h := header("")[:1]
				if hs != nil {
					h = header(string(hs))
				}
				fromJSON, err := DecodeEffectResultRecord(h, js)
				if err != nil {
					t.Fatalf("JSON form (%s): %v", hs, err)
				}
				if fromJSON.EnvelopeID != rec.EnvelopeID || !reflect.DeepEqual(fromJSON.Result, rec.Result) ||
					!rec.CreatedAt.IsZero() && !fromJSON.CreatedAt.Equal(rec.CreatedAt) {
					t.Errorf("JSON form (%s) %+v %+v\nwant %+v %+v", hs, fromJSON, fromJSON.Result, rec, rec.Result)
				}
			}
		})
	}
}

// The JSON form is what the effects wrote before protobuf: the envelope
// around the result, with the results topic's event type, the payload type
// and tag, and the writer's own options on top.
func TestMarshalEffectResultJSONIsTheEnvelope(t *testing.T) {
	rec := resultRecords(t)["retriable failure"]
	b, err := MarshalEffectResultJSON(rec, envelope.WithSourceTool("consul-effect"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelope.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if env.EventType == nil || *env.EventType != "platform.effect-results" || env.Metadata.Tags["message_category"] != "event" ||
		env.PayloadType == nil || *env.PayloadType != "EffectResult" || env.SourceTool == nil || *env.SourceTool != "consul-effect" ||
		env.EnvelopeID != rec.EnvelopeID || env.CorrelationID == nil || *env.CorrelationID != rec.Result.CorrelationID ||
		!env.EnvelopeTimestamp.Equal(rec.CreatedAt) || !strings.Contains(string(env.Payload), `"error_code": "POSTGRES_CONNECTION_ERROR"`) {
		t.Fatalf("envelope %s", b)
	}
	if _, err := MarshalEffectResultJSON(EffectResultRecord{}); err == nil {
		t.Error("a record without a result encoded")
	}
	if _, err := MarshalEffectResult(EffectResultRecord{}); err == nil {
		t.Error("a record without a result encoded")
	}
}

// A result without a backend (an effect that predates the field) reads as
// its intent type's backend, in both forms.
func TestEffectResultBackendDefault(t *testing.T) {
	rec := resultRecords(t)["success"]
	rec.Result.Backend = ""
	for _, form := range []struct {
		ct     string
		encode func(EffectResultRecord) ([]byte, error)
	}{
		{EffectResultContentType, MarshalEffectResult},
		{ContentTypeJSON, func(r EffectResultRecord) ([]byte, error) { return MarshalEffectResultJSON(r) }},
	} {
		b, err := form.encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEffectResultRecord(header(form.ct), b)
		if err != nil || got.Result.Backend != "postgres" {
			t.Errorf("%s: backend %q, %v", form.ct, got.Result.Backend, err)
		}
	}
}

func TestDecodeEffectResultRecordRefuses(t *testing.T) {
	good := resultRecords(t)["retriable failure"]
	mutate := func(f func(m *fleetv1.EffectResult)) []byte {
		m, err := good.Proto()
		if err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pb := mutate(func(*fleetv1.EffectResult) {})
	js, err := MarshalEffectResultJSON(good)
	if err != nil {
		t.Fatal(err)
	}
	jsonWith := func(from, to string) []byte {
		if !strings.Contains(string(js), from) {
			t.Fatalf("%q not in %s", from, js)
		}
		return []byte(strings.Replace(string(js), from, to, 1))
	}
	for _, tc := range []struct {
		name, ct, want string
		value          []byte
	}{
		{"intent message", IntentContentType, "unsupported content type", pb},
		{"no message named", ContentTypeProtobuf, "unsupported content type", pb},
		{"text", "text/plain", "unsupported content type", pb},
		{"protobuf as JSON", ContentTypeJSON, "effect result envelope", pb},
		{"JSON as protobuf", EffectResultContentType, "not a onex.fleet.v1.EffectResult", js},
		{"not protobuf", EffectResultContentType, "not a onex.fleet.v1.EffectResult", []byte{0xff, 0xff}},
		{"no intent id", EffectResultContentType, `"intent_id": missing`, mutate(func(m *fleetv1.EffectResult) { m.IntentId = "" })},
		{"bad intent id", EffectResultContentType, `"intent_id"`, mutate(func(m *fleetv1.EffectResult) { m.IntentId = "intent-1" })},
		{"no node id", EffectResultContentType, `"node_id": missing`, mutate(func(m *fleetv1.EffectResult) { m.NodeId = "" })},
		{"bad node id", EffectResultContentType, `"node_id"`, mutate(func(m *fleetv1.EffectResult) { m.NodeId = "node-1" })},
		{"no intent type", EffectResultContentType, `"intent_type": missing`, mutate(func(m *fleetv1.EffectResult) { m.IntentType = "" })},
		{"bad correlation", EffectResultContentType, `"correlation_id"`, mutate(func(m *fleetv1.EffectResult) { m.CorrelationId = "x" })},
		{"bad attempt id", EffectResultContentType, `"registration_attempt_id"`,
			mutate(func(m *fleetv1.EffectResult) { m.RegistrationAttemptId = "x" })},
		{"bad envelope id", EffectResultContentType, `"envelope_id"`, mutate(func(m *fleetv1.EffectResult) { m.EnvelopeId = "x" })},
		{"NaN duration", EffectResultContentType, `"duration_ms"`, mutate(func(m *fleetv1.EffectResult) { m.DurationMs = math.NaN() })},
		{"infinite duration", EffectResultContentType, `"duration_ms"`, mutate(func(m *fleetv1.EffectResult) { m.DurationMs = math.Inf(1) })},
		{"time out of range", EffectResultContentType, `"completed_at"`,
			mutate(func(m *fleetv1.EffectResult) { m.CompletedAt.Seconds = 1 << 40 })},
		{"bad nanos", EffectResultContentType, `"created_at"`, mutate(func(m *fleetv1.EffectResult) { m.CreatedAt.Nanos = -1 })},
		{"JSON without intent id", "", `"intent_id": missing`, jsonWith(`"intent_id": "`+good.Result.IntentID.String()+`"`, `"intent_id": null`)},
		{"JSON without node id", "", `"node_id": missing`, jsonWith(`"node_id": "`+good.Result.NodeID.String()+`"`, `"node_id": null`)},
		{"JSON without intent type", "", `"intent_type": missing`, jsonWith(`"intent_type": "consul.register"`, `"intent_type": ""`)},
		{"JSON payload not a result", "", "effect result payload", jsonWith(`"intent_type": "consul.register"`, `"intent_type": 7`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEffectResultRecord(header(tc.ct), tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// Fields a newer effect adds are skipped by this version's reader.
func TestUnmarshalEffectResultSkipsUnknownFields(t *testing.T) {
	rec := resultRecords(t)["success"]
	b, err := MarshalEffectResult(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Field 99, varint 1: a field this version does not know.
	got, err := UnmarshalEffectResult(append(b, 0x98, 0x06, 0x01))
	if err != nil || !reflect.DeepEqual(got, rec) {
		t.Fatalf("%+v, %v", got, err)
	}
}

// FuzzUnmarshalEffectResult feeds arbitrary record values to the protobuf
// decoder: it must never panic, and what it accepts must survive another
// round through the wire unchanged.
func FuzzUnmarshalEffectResult(f *testing.F) {
	for _, rec := range resultRecords(f) {
		b, err := MarshalEffectResult(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte(`{"payload":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalEffectResult(b)
		if err != nil {
			return
		}
		again, err := MarshalEffectResult(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := UnmarshalEffectResult(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %+v: %v", r, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip %+v\nbecame %+v", r, back)
		}
	})
}
