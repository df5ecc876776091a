package pyjson

import (
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
