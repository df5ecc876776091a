package pyjson

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5e-3, -0, true, false, null, "x\u00e9\n"]} `,
	`{"a":1,}`, `[1,]`, `{"a"}`, `{"a":}`, `{a:1}`, `[1 2]`, `{"a":1 "b":2}`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`,
	`1E-7`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"\x01\"", "\"\xff\xfe\"", `"abc`, `tru`, `nul`, `true false`, `{}}`, `[[]`,
	`]`, `}`, `{"a":{"b":[{"c":null}]}}`, `"\/\b\f\r\t\"\\"`, `-01`, `-0.0e+00`, `[-]`, `{"a":1}x`, "\t\r\n[]\n",
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100),
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
	// The golden messages of the Python runtime are all valid: the current
	// package's (interop/golden) and the older fixtures.
	files, _ := filepath.Glob("../../../../shared/fixtures/*.json")
	golden, _ := filepath.Glob("../../../interop/golden/*.json")
	if len(golden) == 0 {
		t.Fatal("no records in interop/golden")
	}
	for _, f := range append(files, golden...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !Valid(b) || !json.Valid(b) {
			t.Errorf("%s: Valid %v, json.Valid %v", f, Valid(b), json.Valid(b))
		}
	}
}

func FuzzValidMatchesEncodingJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	doc := []byte(`{"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","domain":"registration","current_state":"active",` +
		`"capabilities":{"postgres":false,"read":true,"supported_types":["simulated"],"config":{},"batch_size":null,"n":-1.5e3},` +
		`"reducer_state":{"node_id":"7c795465-f358-51dd-84c7-c32c709a3208","endpoints":{"api":"http://127.0.0.1:9/nodes/x"},"sequence":3}}`)
	b.Run("pyjson", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for i := 0; i < b.N; i++ {
			if !Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for i := 0; i < b.N; i++ {
			if !json.Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
}

// String's shortcut for strings without escapes must give what
// encoding/json gives for every string it takes.
func FuzzPlainStringMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`"abc"`, `"é€😀"`, "\"\xff\"", `"a\"b"`, `"\u00e9"`, "\"\x01\"", `""`, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, ok := PlainString(raw)
		if !ok {
			return
		}
		got := string(in)
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("PlainString(%q) = %q; encoding/json: %q, %v", raw, got, want, err)
		}
	})
}
