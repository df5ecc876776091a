package registration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// FuzzDecodeIntrospection checks that DecodeIntrospectionEvent never panics
// and that whatever it accepts re-encodes to a document it accepts again,
// with a stable encoding (MarshalJSON covers every field, so equal bytes
// mean equal events).
func FuzzDecodeIntrospection(f *testing.F) {
	dir := fixturesDir(f)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	malformed, _ := filepath.Glob(filepath.Join(dir, "malformed", "*.json"))
	for _, file := range append(files, malformed...) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if env, err := envelope.Decode(b); err == nil {
			f.Add([]byte(env.Payload))
		}
	}
	for _, name := range []string{"introspection-effect.json", "introspection-request-answer.json"} {
		f.Add(goldenPayload(f, name))
	}
	intro := fixturePayload(f, "introspection-effect.json")
	f.Add(bytes.Replace(intro, []byte(`"mcp": null}`), []byte(`"mcp": {"timeout_seconds": 30}, "x": {"\u00e9": [1E5]}}`), 1))
	f.Add(bytes.Replace(intro, []byte(`"flag_metadata": {}`), []byte(`"flag_metadata": {"f": {"rollout_percentage": 5, "created_at": "2026-03-02 14:05:07+01:00"}}`), 1))

	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeIntrospectionEvent(data)
		if err != nil {
			return
		}
		out, err := ev.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded event failed: %v\ninput: %q", err, data)
		}
		ev2, err := DecodeIntrospectionEvent(out)
		if err != nil {
			t.Fatalf("Decode(Marshal(x)) failed: %v\nencoded: %q", err, out)
		}
		out2, err := ev2.MarshalJSON()
		if err != nil {
			t.Fatalf("second MarshalJSON failed: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the event:\n first: %q\nsecond: %q", out, out2)
		}
	})
}
