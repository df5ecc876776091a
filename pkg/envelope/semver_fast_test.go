package envelope

import (
	"reflect"
	"testing"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// The direct encoding of the common form is what the model writes, and the
// direct decoding gives what the model gives.
func TestSemVerFastPaths(t *testing.T) {
	for _, v := range []SemVer{{}, Version100, EnvelopeVersion, {Major: 12, Minor: 345, Patch: 6789}, {Major: 999999999}} {
		got, err := v.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, err := pyjson.Marshal(v.spec())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("MarshalJSON(%v) = %s, the model writes %s", v, got, want)
		}
		fast, ok := decodeSemVerFast(want)
		if !ok || !reflect.DeepEqual(fast, v) {
			t.Errorf("fast decode of %s = %+v, %v", want, fast, ok)
		}
	}
	for _, s := range []string{
		`{"major": 1, "minor": 2}`,                          // patch missing: the model's error
		`{"major": 1, "minor": 2, "patch": 3, "x": 1}`,      // unknown key: the model ignores it
		`{"major": 1, "minor": 2, "patch": 3, "major": 4}`,  // duplicate
		`{"major": 1, "minor": 2, "patch": -3}`,             // negative: the model's error
		`{"major": 1.0, "minor": 2, "patch": 3}`,            // fraction
		`{"major": 1, "minor": 2, "patch": 3, "build": []}`, // empty list, not null
		`{"major": 1234567890, "minor": 2, "patch": 3}`,     // long number
		`{"major": 1, "minor": 2, "patch": 3, "prerelease": ["rc", 1]}`,
	} {
		if v, ok := decodeSemVerFast([]byte(s)); ok {
			t.Errorf("fast decode took %s (%+v); the model must decide", s, v)
		}
	}
}

func FuzzSemVerFastMatchesModel(f *testing.F) {
	for _, s := range []string{`{"major": 1, "minor": 0, "patch": 0, "prerelease": null, "build": null}`,
		`{"patch":3,"minor":2,"major":1}`, `{"major": 1, "minor": 2, "patch": 3, "build": null, "build": null}`,
		` {"major":0,"minor":0,"patch":0} `, `{"major": 01}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeSemVerFast(b)
		if !ok {
			return
		}
		var model SemVer
		if err := pyjson.DecodeObject(b, model.spec()); err != nil || model.Validate() != nil {
			t.Fatalf("fast decode took %q, the model refuses it (%v)", b, err)
		}
		if !reflect.DeepEqual(fast, model) {
			t.Fatalf("%q: fast %+v, model %+v", b, fast, model)
		}
	})
}
