package pyjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
)

type sample struct {
	ID    uuid.UUID
	Name  *string
	Count int
	Tags  []string
	Kv    map[string]int
	Extra Members
}

func (s *sample) spec(mode Extra) Spec {
	return Spec{Extra: mode, Extras: &s.Extra, Fields: []Field{
		Req("id", &s.ID, UUID),
		Prop("name", &s.Name, Nullable(String)),
		Def("count", &s.Count, Int, 7),
		Prop("tags", &s.Tags, Slice(String)),
		Prop("kv", &s.Kv, Map(Int)),
	}}
}

const sampleID = "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"

func TestDecodeObjectErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		mode      Extra
		wantField string
	}{
		{"missing required", `{}`, ExtraIgnore, "id"},
		{"bad uuid", `{"id": "abc"}`, ExtraIgnore, "id"},
		{"uuid wrong type", `{"id": 5}`, ExtraIgnore, "id"},
		{"case sensitive keys", `{"ID": "` + sampleID + `"}`, ExtraIgnore, "id"},
		{"null for non-nullable", `{"id": "` + sampleID + `", "count": null}`, ExtraIgnore, "count"},
		{"float for int", `{"id": "` + sampleID + `", "count": 5.0}`, ExtraIgnore, "count"},
		{"string for int", `{"id": "` + sampleID + `", "count": "5"}`, ExtraIgnore, "count"},
		{"array element", `{"id": "` + sampleID + `", "tags": ["a", 1]}`, ExtraIgnore, "tags[1]"},
		{"map value", `{"id": "` + sampleID + `", "kv": {"x": "y"}}`, ExtraIgnore, "kv.x"},
		{"forbid unknown", `{"id": "` + sampleID + `", "zzz": 1}`, ExtraForbid, "zzz"},
		{"not an object", `[1]`, ExtraIgnore, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := DecodeObject([]byte(tt.in), s.spec(tt.mode))
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

func TestDecodeEncodeObject(t *testing.T) {
	in := `{"zz": [1,2], "id": "` + sampleID + `", "tags": ["a"], "kv": {"b": 2, "a": 1}, "aa": "x", "zz": {"k":"\u00e9"}}`
	var s sample
	if err := DecodeObject([]byte(in), s.spec(ExtraAllow)); err != nil {
		t.Fatal(err)
	}
	if s.Count != 7 || s.Name != nil || len(s.Extra) != 2 || s.Extra[0].Key != "zz" {
		t.Fatalf("decoded %+v", s)
	}
	got, err := Marshal(s.spec(ExtraAllow))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id": "` + sampleID + `", "name": null, "count": 7, "tags": ["a"], "kv": {"a": 1, "b": 2}, "zz": {"k": "\u00e9"}, "aa": "x"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestFieldErrorMessageAndPaths(t *testing.T) {
	err := WithModel("envelope", At("metadata", At("headers", AtIndex(2, errors.New("boom")))))
	if got, want := err.Error(), `envelope: field "metadata.headers[2]": boom`; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if got, want := (&FieldError{Model: "m", Reason: "r"}).Error(), "m: r"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

// referenceMembers is the encoding/json Decoder walk ParseMembers used
// before its scanner: the scanner must split every valid object the same way.
func referenceMembers(raw []byte) ([]Member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []Member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, Member{Key: tok.(string), Value: v})
	}
	return out, nil
}

func FuzzParseMembersMatchesDecoder(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}], "d\"e":"x\\"y" } `, `{"a":{"b":{"c":[[],{}]}},"a":null}`,
		`{"\u00e9":true,"n":-1.5e3,"s":"\\\\","t":[ "]" , "{" ]}`, `[1]`, `{"a":}`, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseMembers(raw)
		if !json.Valid(raw) {
			if err == nil {
				t.Fatalf("invalid JSON %q accepted", raw)
			}
			return
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] != '{' {
			if err == nil {
				t.Fatalf("non-object %q accepted", raw)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid object %q: %v", raw, err)
		}
		want, err := referenceMembers(raw)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", raw, len(got), len(want))
		}
		for i := range got {
			if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
				t.Fatalf("%q member %d: %q=%s, want %q=%s", raw, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
			}
		}
	})
}
