package envelope

import (
	"errors"
	"reflect"
	"testing"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// DecodeTolerant accepts unknown keys at every level of the envelope and
// reports each with its path; what Decode rejects for any other reason it
// rejects with the same error.
func TestDecodeTolerant(t *testing.T) {
	const id = `"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"`
	tests := []struct {
		name      string
		in        string
		unknown   []string // paths, in order
		wantField string   // a FieldError on this field (and no unknowns)
	}{
		{"none", `{"payload": {"x": 1}, "tenant_id": "acme", "producer": "node-a"}`, nil, ""},
		{"top level, kept in Extra too", `{"payload": {}, "z_new": [1], "a_new": {"b": 2}}`, []string{"z_new", "a_new"}, ""},
		{"metadata", `{"payload": {}, "metadata": {"baggage": {"k": "v"}, "tags": {"a": "b"}}}`, []string{"metadata.baggage"}, ""},
		{"version object", `{"payload": {}, "envelope_version": {"major": 2, "minor": 4, "patch": 0, "label": "x"}}`, []string{"envelope_version.label"}, ""},
		{"payload schema version", `{"payload": {}, "payload_schema_version": {"major": 1, "minor": 0, "patch": 0, "n": 1}}`, []string{"payload_schema_version.n"}, ""},
		{"repeated key once", `{"payload": {}, "q": 1, "q": 2}`, []string{"q"}, ""},
		{"payload not looked into", `{"payload": {"anything": {"goes": 1}}}`, nil, ""},
		{"bad uuid still fails", `{"payload": {}, "new": 1, "correlation_id": "nope"}`, nil, "correlation_id"},
		{"bad priority still fails", `{"payload": {}, "new": 1, "priority": 0}`, nil, "priority"},
		{"missing payload still fails", `{"new": 1}`, nil, "payload"},
		{"wrong type in metadata still fails", `{"payload": {}, "metadata": {"new": 1, "trace_id": 5}}`, nil, "metadata.trace_id"},
		{"blank tenant still fails", `{"payload": {}, "tenant_id": ""}`, nil, "tenant_id"},
		{"self parent still fails", `{"payload": {}, "envelope_id": ` + id + `, "parent_envelope_id": ` + id + `}`, nil, "parent_envelope_id"},
		{"string version still fails", `{"payload": {}, "onex_version": "1.0.0"}`, nil, "onex_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, unknown, err := DecodeTolerant([]byte(tt.in))
			_, serr := Decode([]byte(tt.in))
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField || fe.Model != "envelope" {
					t.Fatalf("err = %v, want a FieldError on %q", err, tt.wantField)
				}
				if serr == nil || serr.Error() != err.Error() {
					t.Fatalf("tolerant error %q, strict error %v", err, serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, u := range unknown {
				paths = append(paths, u.Path)
			}
			if !reflect.DeepEqual(paths, tt.unknown) {
				t.Fatalf("unknown %v, want %v", paths, tt.unknown)
			}
			// Unknown keys are never Decode's reason to fail either, and the
			// two agree on the value.
			s, serr := Decode([]byte(tt.in))
			if serr != nil {
				t.Fatal(serr)
			}
			alignDefaults([]byte(tt.in), s, e)
			if !reflect.DeepEqual(s, e) {
				t.Fatalf("Decode = %+v, %v\nDecodeTolerant = %+v", s, serr, e)
			}
		})
	}
	_, unknown, _ := DecodeTolerant([]byte(`{"payload": {}, "top": [1, 2]}`))
	if len(unknown) != 1 || string(unknown[0].Value) != "[1, 2]" {
		t.Fatalf("unknown value %+v", unknown)
	}
}

func TestDecodePayloadTolerant(t *testing.T) {
	e, err := Decode([]byte(`{"payload": {"x": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	type p struct{}
	v, unknown, err := DecodePayloadTolerant(e, func([]byte) (*p, []pyjson.Unknown, error) {
		return &p{}, []pyjson.Unknown{{Path: "flow_window", Value: []byte("{}")}, {Path: "a.b[0].c", Value: []byte("1")}}, nil
	})
	if err != nil || v == nil || len(unknown) != 2 || unknown[0].Path != "payload.flow_window" || unknown[1].Path != "payload.a.b[0].c" {
		t.Fatalf("v=%v unknown=%v err=%v", v, unknown, err)
	}
	_, _, err = DecodePayloadTolerant(e, func([]byte) (*p, []pyjson.Unknown, error) {
		return nil, nil, &FieldError{Model: "M", Field: "node_type", Reason: "bad"}
	})
	if err == nil || err.Error() != `M: field "payload.node_type": bad` {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDecodeTolerant: whatever Decode accepts, DecodeTolerant accepts with
// the same value; whatever it rejects, DecodeTolerant rejects with the same
// error. (The envelope keeps unknown top-level keys in both modes, and
// ignores unknown keys of metadata and versions in the strict one, so the
// two never disagree on acceptance.)
func FuzzDecodeTolerant(f *testing.F) {
	for _, name := range envelopeFixtures {
		f.Add(readFixture(f, name))
	}
	for _, name := range goldenEnvelopeNames(f) {
		f.Add(readGolden(f, name))
	}
	f.Add([]byte(`{"payload": {}, "metadata": {"x": 1, "tags": {"a": "b"}}, "onex_version": {"major": 1, "minor": 0, "patch": 0, "y": null}, "z": 2}`))
	f.Add([]byte(`{"payload": {}, "tenant_id": " ", "w": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, serr := Decode(data)
		tv, unknown, terr := DecodeTolerant(data)
		if (serr == nil) != (terr == nil) {
			t.Fatalf("strict err %v, tolerant err %v", serr, terr)
		}
		if serr != nil {
			if serr.Error() != terr.Error() {
				t.Fatalf("strict err %q, tolerant err %q", serr, terr)
			}
			return
		}
		alignDefaults(data, s, tv)
		if !reflect.DeepEqual(s, tv) {
			t.Fatalf("values differ:\nstrict   %+v\ntolerant %+v", s, tv)
		}
		for _, x := range s.Extra {
			found := false
			for _, u := range unknown {
				found = found || u.Path == x.Key
			}
			if !found {
				t.Fatalf("extra key %q not reported (%v)", x.Key, unknown)
			}
		}
	})
}

// alignDefaults copies into b the defaults drawn at decode time (a random
// envelope_id, the decode time), which differ between two decodes of data.
func alignDefaults(data []byte, a, b *Envelope) {
	if _, ok := memberOf(data, "envelope_id"); !ok {
		b.EnvelopeID = a.EnvelopeID
	}
	if _, ok := memberOf(data, "envelope_timestamp"); !ok {
		b.EnvelopeTimestamp = a.EnvelopeTimestamp
	}
}

func memberOf(data []byte, key string) ([]byte, bool) {
	ms, err := pyjson.ParseMembers(data)
	if err != nil {
		return nil, false
	}
	v, ok := pyjson.Members(ms).Get(key)
	return v, ok
}

func TestNewWithAttribution(t *testing.T) {
	parent := DeterministicID(DeterministicID([16]byte{1}, "x", 0), "y", 1)
	e, err := New(map[string]int{"a": 1}, WithParentEnvelopeID(parent), WithTenantID("acme"), WithProducer("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(out)
	if err != nil || *d.ParentEnvelopeID != parent || *d.TenantID != "acme" || *d.Producer != "node-a" {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := New(1, WithProducer(" ")); err == nil {
		t.Fatal("New accepted a blank producer")
	}
	id := DeterministicID([16]byte{2}, "z", 0)
	if _, err := New(1, WithEnvelopeID(id), WithParentEnvelopeID(id)); err == nil {
		t.Fatal("New accepted an envelope that is its own parent")
	}
}
