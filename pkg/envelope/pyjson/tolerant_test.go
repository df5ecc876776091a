package pyjson

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// outer is a model with models nested in it directly, in a nullable field,
// in an array and in a map, each with its own policy.
type outer struct {
	ID    string
	In    inner
	Opt   *inner
	List  []inner
	ByKey map[string]inner
	Kept  Members
}

type inner struct {
	N    int
	Tags []string
}

func (o *outer) spec() Spec {
	return Spec{Extra: ExtraForbid, Fields: []Field{
		Req("id", &o.ID, String),
		Prop("in", &o.In, innerC),
		Prop("opt", &o.Opt, Nullable(innerC)),
		Prop("list", &o.List, Slice(innerC)),
		Prop("by_key", &o.ByKey, Map(innerC)),
	}}
}

func (i *inner) spec() Spec {
	return Spec{Extra: ExtraForbid, Fields: []Field{
		Def("n", &i.N, Int, 1),
		Prop("tags", &i.Tags, Slice(String)),
	}}
}

var innerC = Object((*inner).spec).Named("Inner")

func TestDecodeObjectTolerant(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		unknown   []string // path=value
		wantField string   // a FieldError, in both modes
	}{
		{"nothing unknown", `{"id": "a", "in": {"n": 2}}`, nil, ""},
		{"top level", `{"id": "a", "new": {"x": 1}}`, []string{`new={"x": 1}`}, ""},
		{"nested model", `{"id": "a", "in": {"n": 2, "deep": true}}`, []string{"in.deep=true"}, ""},
		{"nullable model", `{"id": "a", "opt": {"n": 2, "x": null}}`, []string{"opt.x=null"}, ""},
		{"array element", `{"id": "a", "list": [{"n": 1}, {"n": 2, "x": "y"}]}`, []string{`list[1].x="y"`}, ""},
		{"map value", `{"id": "a", "by_key": {"k.1": {"x": 1}}}`, []string{"by_key.k.1.x=1"}, ""},
		{"order: this level first, in input order", `{"z": 1, "in": {"q": 2}, "id": "a", "b": 3}`, []string{"z=1", "b=3", "in.q=2"}, ""},
		{"repeated key once, last value", `{"id": "a", "r": 1, "r": 2}`, []string{"r=2"}, ""},
		{"missing required", `{"new": 1}`, nil, "id"},
		{"wrong type", `{"id": "a", "new": 1, "in": {"n": "2"}}`, nil, "in.n"},
		{"wrong type in an array element", `{"id": "a", "list": [{"x": 1}, {"tags": [1]}]}`, nil, "list[1].tags[0]"},
		{"not an object", `{"id": "a", "in": [1]}`, nil, "in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			tol := &Tolerant{}
			err := DecodeObjectTolerant([]byte(tt.in), o.spec(), tol)
			var strict outer
			serr := DecodeObject([]byte(tt.in), strict.spec())
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField {
					t.Fatalf("err = %v, want a FieldError on %q", err, tt.wantField)
				}
				if serr == nil {
					t.Fatal("strict decode accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range tol.Unknown {
				got = append(got, u.Path+"="+string(u.Value))
			}
			if !slices.Equal(got, tt.unknown) {
				t.Fatalf("unknown %v, want %v", got, tt.unknown)
			}
			if len(tt.unknown) == 0 {
				if serr != nil || !reflect.DeepEqual(o, strict) {
					t.Fatalf("strict: %+v %v; tolerant %+v", strict, serr, o)
				}
			} else if serr == nil {
				t.Fatal("strict decode accepted unknown keys of forbid models")
			}
		})
	}
}

// Extra policies under a tolerant decode: every unknown key is reported,
// ExtraAllow keeps them as well, ExtraIgnore drops them.
func TestTolerantPolicies(t *testing.T) {
	in := `{"id": "` + sampleID + `", "zz": 1}`
	for _, mode := range []Extra{ExtraIgnore, ExtraForbid, ExtraAllow} {
		var s sample
		tol := &Tolerant{}
		if err := DecodeObjectTolerant([]byte(in), s.spec(mode), tol); err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		if len(tol.Unknown) != 1 || tol.Unknown[0].Path != "zz" {
			t.Fatalf("mode %d: unknown %+v", mode, tol.Unknown)
		}
		if kept := len(s.Extra) == 1; kept != (mode == ExtraAllow) {
			t.Fatalf("mode %d: extras %+v", mode, s.Extra)
		}
	}
}

// FuzzTolerantMatchesStrict: whenever the strict decode succeeds, the
// tolerant one does too, with the same value; whenever the strict decode
// fails for anything but an unknown key, the tolerant one fails with the
// same error; and a tolerant decode never fails on an unknown key.
func FuzzTolerantMatchesStrict(f *testing.F) {
	for _, s := range []string{`{"id": "a"}`, `{"id": "a", "in": {"n": 2, "x": 1}, "list": [{}, {"y": []}]}`,
		`{"id": 1, "z": 2}`, `{"by_key": {"a": {"n": -1, "q": 0}}, "id": ""}`, `[]`, `{"id": "a", "opt": null, "opt": {"tags": ["t"]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if CheckSyntax(raw) != nil {
			return
		}
		var s, o outer
		serr := DecodeObject(raw, s.spec())
		tol := &Tolerant{}
		terr := DecodeObjectTolerant(raw, o.spec(), tol)
		var fe *FieldError
		if terr != nil && errors.As(terr, &fe) && fe.Reason == "extra fields not permitted" {
			t.Fatalf("tolerant decode failed on an unknown key: %v", terr)
		}
		switch {
		case serr == nil:
			if terr != nil || !reflect.DeepEqual(s, o) || len(tol.Unknown) != 0 {
				t.Fatalf("strict ok, tolerant %v (unknown %v)", terr, tol.Unknown)
			}
		case errors.As(serr, &fe) && fe.Reason == "extra fields not permitted":
			// The tolerant decode may succeed or fail on what the strict
			// one never reached.
		default:
			if terr == nil || terr.Error() != serr.Error() {
				t.Fatalf("strict %v, tolerant %v", serr, terr)
			}
		}
	})
}

func TestTypes(t *testing.T) {
	var o outer
	m := ModelType("Outer", o.spec).Model()
	var got []string
	for _, f := range m.Fields {
		got = append(got, f.Name+":"+f.Type.String()+":"+string(f.DefaultJSON))
	}
	// A Prop field's default is its Go zero value (here the zero inner, not
	// inner's own defaults).
	want := []string{"id:string:", "in:object Inner:{\"n\": 0, \"tags\": []}", "opt:object Inner|null:null",
		"list:array[object Inner]:[]", "by_key:object{object Inner}:{}"}
	if !slices.Equal(got, want) {
		t.Fatalf("fields %q\nwant %q", got, want)
	}
	if f, _ := innerC.Type.Model().Field("n"); !f.Default || string(f.DefaultJSON) != "1" {
		t.Fatalf("default of n: %+v", f)
	}
	for c, want := range map[*Type]string{UUID.Type: "string(uuid)", RawObjectOrNull.Type: "object|null",
		Enum("a", "b").Type: `string enum "a", "b"`, Nullable(Slice(Float)).Type: "array[number]|null", RawJSON.Type: "any"} {
		if c.String() != want {
			t.Errorf("%s, want %s", c, want)
		}
	}
}
