package envelope

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics and that everything it accepts
// survives an Encode/Decode round trip unchanged: Encode succeeds,
// Decode(Encode(x)) succeeds, and re-encoding that yields the same bytes
// (Encode is deterministic and covers every field, so equal bytes mean
// equal envelopes).
func FuzzDecode(f *testing.F) {
	dir := fixturesDir(f)
	for _, pattern := range []string{"*.json", "malformed/*.json"} {
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"payload": null, "envelope_timestamp": "2026-03-02 16:05:07.5+02:00", "x": {"\u00e9": [1E5]}}`))
	f.Add([]byte(`{"payload": 1, "envelope_version": {"major": 2, "minor": 1, "patch": 0, "prerelease": ["rc", 1], "build": []}}`))
	f.Add([]byte(`{"payload": {}, "metadata": {"headers": {"b": "\ud800", "a": "é"}}, "security_context": {"k": 1.50}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			return
		}
		out, err := e.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded envelope failed: %v\ninput: %q", err, data)
		}
		e2, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Encode(x)) failed: %v\nencoded: %q", err, out)
		}
		out2, err := e2.Encode()
		if err != nil {
			t.Fatalf("second Encode failed: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the envelope:\n first: %q\nsecond: %q", out, out2)
		}
		if !bytes.Equal(e.Payload, e2.Payload) {
			t.Fatalf("payload bytes changed: %q -> %q", e.Payload, e2.Payload)
		}
	})
}
