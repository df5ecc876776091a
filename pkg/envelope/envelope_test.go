package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The older fixtures (envelope 2.1.0, 19 fields: the compatibility floor)
// still decode, to the values they hold, and re-encode byte for byte but
// for the three fields added since, written null in their places; the
// version they carry is kept. The current records are checked in
// golden_test.go.
func TestOldFixtureEnvelopesRoundTrip(t *testing.T) {
	for _, name := range envelopeFixtures {
		t.Run(name, func(t *testing.T) {
			in := readFixture(t, name)
			e, err := Decode(in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e.EnvelopeVersion.String() != "2.1.0" || e.ParentEnvelopeID != nil || e.TenantID != nil || e.Producer != nil || len(e.Extra) != 0 {
				t.Errorf("decoded version %s, parent %v, tenant %v, producer %v, extra %v", e.EnvelopeVersion, e.ParentEnvelopeID, e.TenantID, e.Producer, e.Extra)
			}
			out, err := e.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if want := withNewFieldsNull(t, in); !bytes.Equal(out, want) {
				t.Fatalf("Encode(Decode(x)) != x with the new fields null\n got: %s\nwant: %s", out, want)
			}
			again, err := Decode(out)
			if err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("Decode(Encode(x)) = %+v, %v\nwant %+v", again, err, e)
			}
			if canon, err := Canonicalize(in); err != nil || !bytes.Equal(canon, out) {
				t.Fatalf("Canonicalize differs: %v", err)
			}
			te, unknown, err := DecodeTolerant(in)
			if err != nil || len(unknown) != 0 || !reflect.DeepEqual(te, e) {
				t.Fatalf("DecodeTolerant = %+v, unknown %v, err %v", te, unknown, err)
			}
		})
	}
}

func TestGoldenEnvelopeFields(t *testing.T) {
	e, err := Decode(readFixture(t, "introspection-effect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.EnvelopeID.String(); got != "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" {
		t.Errorf("envelope_id = %s", got)
	}
	if e.CorrelationID == nil || e.CorrelationID.String() != "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d" {
		t.Errorf("correlation_id = %v", e.CorrelationID)
	}
	want := time.Date(2026, 3, 2, 14, 5, 7, 412377000, time.UTC)
	if !e.EnvelopeTimestamp.Equal(want) {
		t.Errorf("envelope_timestamp = %v, want %v", e.EnvelopeTimestamp, want)
	}
	if e.Priority != 5 || e.EnvelopeVersion.String() != "2.1.0" || e.OnexVersion.String() != "1.0.0" {
		t.Errorf("priority/versions = %d %s %s", e.Priority, e.EnvelopeVersion, e.OnexVersion)
	}
	if !bytes.HasPrefix(e.Payload, []byte(`{"node_id": "3f6b2a9e`)) || !json.Valid(e.Payload) {
		t.Errorf("payload not kept verbatim: %.40s", e.Payload)
	}
}

func TestMalformedFixturesRejected(t *testing.T) {
	tests := []struct {
		file      string
		wantField string // "" = JSON syntax error expected
	}{
		{"malformed/correlation-not-uuid.json", "correlation_id"},
		{"malformed/envelope-version-string.json", "envelope_version"},
		{"malformed/missing-payload.json", "payload"},
		{"malformed/priority-out-of-range.json", "priority"},
		{"malformed/truncated.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Decode(readFixture(t, tt.file))
			if err == nil {
				t.Fatal("Decode accepted a malformed envelope")
			}
			if tt.wantField == "" {
				var se *json.SyntaxError
				if !errors.Is(err, ErrSyntax) || !errors.As(err, &se) {
					t.Fatalf("err = %v, want a JSON syntax error", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want *FieldError", err, err)
			}
			if fe.Field != tt.wantField || fe.Model != "envelope" {
				t.Fatalf("field = %q model = %q, want %q (%v)", fe.Field, fe.Model, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), `envelope: field "`+tt.wantField+`"`) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}
}

func TestDecodeFieldErrors(t *testing.T) {
	base := func(kv string) string { return `{"payload": {}` + kv + `}` }
	tests := []struct {
		name      string
		in        string
		wantField string
	}{
		{"priority too high", base(`, "priority": 11`), "priority"},
		{"priority string", base(`, "priority": "5"`), "priority"},
		{"priority null", base(`, "priority": null`), "priority"},
		{"timeout zero", base(`, "timeout_seconds": 0`), "timeout_seconds"},
		{"retry negative", base(`, "retry_count": -1`), "retry_count"},
		{"envelope_id bad", base(`, "envelope_id": "nope"`), "envelope_id"},
		{"trace_id not uuid", base(`, "trace_id": "abc"`), "trace_id"},
		{"request_id number", base(`, "request_id": 7`), "request_id"},
		{"onex_version string", base(`, "onex_version": "1.0.0"`), "onex_version"},
		{"payload_schema_version string", base(`, "payload_schema_version": "1.0.0"`), "payload_schema_version"},
		{"version negative", base(`, "envelope_version": {"major": -1, "minor": 0, "patch": 0}`), "envelope_version.major"},
		{"version missing patch", base(`, "envelope_version": {"major": 1, "minor": 0}`), "envelope_version.patch"},
		{"version prerelease bad", base(`, "envelope_version": {"major": 1, "minor": 0, "patch": 0, "prerelease": [true]}`), "envelope_version.prerelease[0]"},
		{"naive timestamp", base(`, "envelope_timestamp": "2026-03-02T14:05:07"`), "envelope_timestamp"},
		{"bad timestamp", base(`, "envelope_timestamp": "yesterday"`), "envelope_timestamp"},
		{"metadata null", base(`, "metadata": null`), "metadata"},
		{"metadata trace_id number", base(`, "metadata": {"trace_id": 1}`), "metadata.trace_id"},
		{"metadata header not string", base(`, "metadata": {"headers": {"x": 1}}`), "metadata.headers.x"},
		{"security_context string", base(`, "security_context": "x"`), "security_context"},
		{"event_type number", base(`, "event_type": 1`), "event_type"},
		{"missing payload", `{"priority": 5}`, "payload"},
		{"parent_envelope_id not uuid", base(`, "parent_envelope_id": "p"`), "parent_envelope_id"},
		{"parent is self", `{"payload": {}, "envelope_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "parent_envelope_id": "9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D"}`, "parent_envelope_id"},
		{"tenant_id blank", base(`, "tenant_id": " \t"`), "tenant_id"},
		{"tenant_id empty", base(`, "tenant_id": ""`), "tenant_id"},
		{"tenant_id number", base(`, "tenant_id": 7`), "tenant_id"},
		{"producer blank", base(`, "producer": "\u001f\u3000"`), "producer"},
		{"producer object", base(`, "producer": {}`), "producer"},
		{"not an object", `[1, 2]`, ""},
		{"null document", `null`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
		})
	}
}

func TestDecodeDefaults(t *testing.T) {
	before := time.Now().Add(-time.Second)
	e, err := Decode([]byte(`{"payload": {"a": 1}, "unknown_key": [1,2], "entity_id": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.EnvelopeID == uuid.Nil || e.EnvelopeID.Version() != 4 {
		t.Errorf("envelope_id default = %s", e.EnvelopeID)
	}
	if e.EnvelopeTimestamp.Before(before) || e.EnvelopeTimestamp.Location() != time.UTC {
		t.Errorf("envelope_timestamp default = %v", e.EnvelopeTimestamp)
	}
	if e.Priority != 5 || e.RetryCount != 0 || e.OnexVersion.String() != "1.0.0" || e.EnvelopeVersion.String() != "2.3.0" {
		t.Errorf("defaults: %+v", e)
	}
	if e.Metadata.Headers == nil || e.Metadata.Tags == nil || e.CorrelationID != nil {
		t.Errorf("metadata/correlation defaults: %+v", e.Metadata)
	}
	if len(e.Extra) != 2 || e.Extra[0].Key != "unknown_key" || e.Extra[1].Key != "entity_id" {
		t.Errorf("extra = %+v", e.Extra)
	}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(out, []byte(`"tenant_id": null, "producer": null, "onex_version": {"major": 1, "minor": 0, "patch": 0, "prerelease": null, "build": null}, `+
		`"envelope_version": {"major": 2, "minor": 3, "patch": 0, "prerelease": null, "build": null}, "unknown_key": [1, 2], "entity_id": "x"}`)) {
		t.Errorf("extras not written after fields: %s", out)
	}
}

func TestDecodeAcceptsPythonVariants(t *testing.T) {
	in := `{"payload": null, "correlation_id": "B7E3C1D24A5F4E6B8C9D0E1F2A3B4C5D",
		"envelope_timestamp": "2026-03-02 16:05:07.5+02:00",
		"metadata": {"headers": {"b": "2", "a": "1"}, "tags": {"message_category": "event"}, "future": 1},
		"envelope_version": {"major": 2, "minor": 1, "patch": 0, "prerelease": ["rc", 1], "build": ["b7"], "x": 1},
		"security_context": {"user_id": null, "roles": []}}`
	e, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"payload": null, `,
		`"correlation_id": "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"`,
		`"envelope_timestamp": "2026-03-02T16:05:07.500000+02:00"`,
		`"metadata": {"trace_id": null, "span_id": null, "parent_span_id": null, "request_id": null, "headers": {"a": "1", "b": "2"}, "tags": {"message_category": "event"}}`,
		`"security_context": {"user_id": null, "roles": []}`,
		`"envelope_version": {"major": 2, "minor": 1, "patch": 0, "prerelease": ["rc", 1], "build": ["b7"]}}`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s\n%s", want, out)
		}
	}
	if e.EnvelopeVersion.String() != "2.1.0-rc.1+b7" {
		t.Errorf("String() = %s", e.EnvelopeVersion)
	}
}

func TestEncodeValidates(t *testing.T) {
	ok := func() *Envelope {
		e, err := New(map[string]int{"a": 1})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tests := []struct {
		name      string
		mutate    func(*Envelope)
		wantField string
	}{
		{"no payload", func(e *Envelope) { e.Payload = nil }, "payload"},
		{"invalid payload", func(e *Envelope) { e.Payload = json.RawMessage(`{`) }, "payload"},
		{"priority zero", func(e *Envelope) { e.Priority = 0 }, "priority"},
		{"timeout negative", func(e *Envelope) { n := -1; e.TimeoutSeconds = &n }, "timeout_seconds"},
		{"retry negative", func(e *Envelope) { e.RetryCount = -2 }, "retry_count"},
		{"version negative", func(e *Envelope) { e.OnexVersion.Minor = -1 }, "onex_version.minor"},
		{"security not object", func(e *Envelope) { e.SecurityContext = json.RawMessage(`[1]`) }, "security_context"},
		{"extra shadows field", func(e *Envelope) { e.Extra.Set("priority", json.RawMessage(`1`)) }, "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok()
			tt.mutate(e)
			_, err := e.Encode()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("err = %v, want FieldError on %q", err, tt.wantField)
			}
		})
	}
}

func TestNew(t *testing.T) {
	corr := uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d")
	topic := "onex.evt.platform.node-became-active.v1"
	type payload struct {
		NodeID string `json:"node_id"`
		Note   string `json:"note"`
	}
	e, err := New(payload{NodeID: "n1", Note: "<é>"},
		WithCorrelationID(corr),
		WithEnvelopeID(DeterministicID(corr, "ModelNodeBecameActive", 0)),
		WithEventType(EventTypeFromTopic(topic)),
		WithTimestamp(time.Date(2026, 3, 2, 14, 5, 7, 123456789, time.UTC)),
		WithTag("causation_id", "c"),
		WithExtra("entity_id", "n1"),
	)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"payload": {"node_id": "n1", "note": "<\u00e9>"}, "envelope_id": "17a56b38-5339-5e6a-9f02-10c143a7615a", ` +
		`"envelope_timestamp": "2026-03-02T14:05:07.123456Z", "correlation_id": "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d", ` +
		`"parent_envelope_id": null, "source_tool": null, "target_tool": null, "metadata": {"trace_id": null, "span_id": null, "parent_span_id": null, ` +
		`"request_id": null, "headers": {}, "tags": {"causation_id": "c"}}, "security_context": null, ` +
		`"event_type": "platform.node-became-active", "payload_type": null, "payload_schema_version": null, "priority": 5, ` +
		`"timeout_seconds": null, "retry_count": 0, "request_id": null, "trace_id": null, "span_id": null, ` +
		`"tenant_id": null, "producer": null, "onex_version": {"major": 1, "minor": 0, "patch": 0, "prerelease": null, "build": null}, ` +
		`"envelope_version": {"major": 2, "minor": 3, "patch": 0, "prerelease": null, "build": null}, "entity_id": "n1"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if _, err := New(1, WithPriority(11)); err == nil {
		t.Fatal("New accepted priority 11")
	}
	if _, err := New(1, WithExtra("x", func() {})); err == nil {
		t.Fatal("New accepted an unmarshalable extra")
	}
}

func TestJSONInterfaces(t *testing.T) {
	in := readGolden(t, "heartbeat-flow-window.json")
	var e Envelope
	if err := json.Unmarshal(in, &e); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, compact.Bytes()) {
		t.Fatalf("json.Marshal = %s", b)
	}
}

func TestDecodePayload(t *testing.T) {
	e, err := Decode([]byte(`{"payload": {"x": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	type p struct{}
	_, err = DecodePayload(e, func([]byte) (*p, error) {
		return nil, &FieldError{Model: "M", Field: "node_type", Reason: "bad"}
	})
	if err == nil || err.Error() != `M: field "payload.node_type": bad` {
		t.Fatalf("err = %v", err)
	}
	v, err := DecodePayload(e, func([]byte) (*p, error) { return &p{}, nil })
	if err != nil || v == nil {
		t.Fatalf("v=%v err=%v", v, err)
	}
}
