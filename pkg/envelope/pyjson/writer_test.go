package pyjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// Expected values were produced by CPython 3 (repr / json.dumps).
func TestAppendFloatMatchesPythonRepr(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{30.02, "30.02"},
		{0.8, "0.8"},
		{1e-05, "1e-05"},
		{0.0001, "0.0001"},
		{1e16, "1e+16"},
		{1e15, "1000000000000000.0"},
		{123456789012345680.0, "1.2345678901234568e+17"},
		{1.5e-07, "1.5e-07"},
		{2.71, "2.71"},
		{-3.5, "-3.5"},
		{1e22, "1e+22"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{100, "100.0"},
		{0.30000000000000004, "0.30000000000000004"},
	}
	for _, tt := range tests {
		if got := string(AppendFloat(nil, tt.in)); got != tt.want {
			t.Errorf("AppendFloat(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestWriterFloatRejectsNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		var w Writer
		if err := w.Float(f); err == nil {
			t.Errorf("Float(%v): want error", f)
		}
	}
}

func TestAppendStringMatchesPythonEnsureASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"a\"b\\c\n\t\x01\x7f é ☃ 😀 </script>&", `"a\"b\\c\n\t\u0001\u007f \u00e9 \u2603 \ud83d\ude00 </script>&"`},
		{"\b\f\r", `"\b\f\r"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := string(AppendString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestReformat(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":[1,{"b":null}],"c":{}}`, `{"a": [1, {"b": null}], "c": {}}`},
		{` {"z":1,"a":2,"z":3} `, `{"z": 1, "a": 2, "z": 3}`},
		{`"\u003c\/x\u00e9"`, `"</x\u00e9"`},
		{`[1E5, -0, 1.50, true, false]`, `[1E5, -0, 1.50, true, false]`},
		{`[]`, `[]`},
	}
	for _, tt := range tests {
		got, err := Reformat([]byte(tt.in))
		if err != nil {
			t.Errorf("Reformat(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Reformat(%s) = %s, want %s", tt.in, got, tt.want)
		}
		again, err := Reformat(got)
		if err != nil || string(again) != string(got) {
			t.Errorf("Reformat not idempotent on %s: %s, %v", got, again, err)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":1}{}`, `[1,]`} {
		if _, err := Reformat([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("Reformat(%q) error = %v, want ErrSyntax", bad, err)
		}
	}
}

// reformatByTokens is the encoding/json Decoder walk Reformat used before
// its scanner: the reference FuzzReformatMatchesTokenWalk holds it to.
func reformatByTokens(raw []byte) ([]byte, error) {
	var w Writer
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var value func() error
	value = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			closing := byte('}')
			if t == '[' {
				closing = ']'
			}
			w.buf = append(w.buf, byte(t))
			for i := 0; dec.More(); i++ {
				if i > 0 {
					w.buf = append(w.buf, ", "...)
				}
				if t == '{' {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					w.String(k.(string))
					w.buf = append(w.buf, ": "...)
				}
				if err := value(); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			w.buf = append(w.buf, closing)
		case string:
			w.String(t)
		case json.Number:
			w.buf = append(w.buf, t...)
		case bool:
			w.Bool(t)
		case nil:
			w.Null()
		}
		return nil
	}
	if err := value(); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

func FuzzReformatMatchesTokenWalk(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":null}],"c":{}}`, ` {"z":1,"a":2,"z":3} `, `"\u003c\/x\u00e9"`,
		`[1E5, -0, 1.50, true, false]`, "\"\xff\xfe\x01\"", `{"\u00e9\n":"\ud83d\ude00"}`, `[[],[{}],""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := Reformat(raw)
		if !json.Valid(raw) {
			if err == nil {
				t.Fatalf("Reformat accepted invalid JSON %q", raw)
			}
			return
		}
		want, werr := reformatByTokens(raw)
		if err != nil || werr != nil || string(got) != string(want) {
			t.Fatalf("Reformat(%q) = %s, %v; the token walk gives %s, %v", raw, got, err, want, werr)
		}
	})
}

func BenchmarkReformat(b *testing.B) {
	raw := []byte(`{"intent_type":"postgres.update_registration","correlation_id":"38183d6b-0027-5f5a-b6e8-ef24dbf81e1b",` +
		`"entity_id":"7c795465-f358-51dd-84c7-c32c709a3208","domain":"registration","updates":{"current_state":"active",` +
		`"liveness_deadline":"2026-03-02T14:01:01Z","updated_at":"2026-03-02T14:00:01Z","sequence":3,"tags":["a","b"]}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Reformat(raw); err != nil {
			b.Fatal(err)
		}
	}
}
