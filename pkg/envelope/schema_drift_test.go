package envelope

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson/schemacheck"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// The envelope's schema drift test: Envelope (with its metadata and
// version objects) against the JSON Schema of the pinned Python package's
// ModelEventEnvelope (interop/schemas), field by field and by probing
// Decode (see pkg/envelope/pyjson/schemacheck). The registration models
// are checked in pkg/registration.

// envelopeDriftOptions are the deliberate differences, with their reasons.
var envelopeDriftOptions = schemacheck.Options{
	LenientExtra: map[string]string{
		"ModelEventEnvelope": "Decode keeps unknown top-level keys in Extra: the envelope wraps what ONEX nodes " +
			"(possibly newer than the fleet) send, and the fleet's own accepted event still carries entity_id " +
			"at the top level (see Envelope.Extra)",
	},
	Opaque: map[string]string{
		"ModelEventEnvelope.security_context": "the fleet neither reads nor writes a security context: it is " +
			"kept as raw JSON (an object or null) and written back as it came",
	},
}

func envelopeDrift(t testing.TB, dir string) []string {
	t.Helper()
	idx, err := schemacheck.LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := idx.Entry("ModelEventEnvelope")
	if !ok {
		t.Fatal("index.json has no ModelEventEnvelope")
	}
	s, err := schemacheck.LoadSchema(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	typ := pyjson.Object((*Envelope).spec).Named("ModelEventEnvelope").Type
	decode := func(b []byte) error { _, err := Decode(b); return err }
	problems := append(schemacheck.Compare(s, e, typ, envelopeDriftOptions), schemacheck.Probe(s, typ, envelopeDriftOptions, decode)...)
	slices.Sort(problems)
	return problems
}

func TestEnvelopeSchemaDrift(t *testing.T) {
	for _, p := range envelopeDrift(t, testkit.SchemaDir(t)) {
		t.Error(p)
	}
	// The check fails when the Python model changes: each edit of a copy
	// of the schema yields its difference.
	edits := []struct {
		want string
		edit func(props map[string]any)
	}{
		{"ModelEventEnvelope.causation_id: missing in Go model", func(props map[string]any) {
			props["causation_id"] = map[string]any{"anyOf": []any{map[string]any{"type": "string", "format": "uuid"}, map[string]any{"type": "null"}}, "default": nil}
		}},
		{"ModelEventEnvelope.priority: Go accepts 10 (maximum 9)", func(props map[string]any) {
			props["priority"].(map[string]any)["maximum"] = 9
		}},
		{"ModelEventEnvelope.producer: in the Go model, not in the Python model", func(props map[string]any) { delete(props, "producer") }},
		{"ModelEventEnvelope.retry_count: string in Python, integer in Go", func(props map[string]any) {
			props["retry_count"] = map[string]any{"type": "string", "default": "0"}
		}},
		{"ModelEventEnvelope.envelope_timestamp: string in Python, string(date-time) in Go", func(props map[string]any) {
			props["envelope_timestamp"] = map[string]any{"type": "string"}
		}},
		{"ModelEventEnvelope.timeout_seconds: Go rejects 0.5 (exclusiveMinimum 0)", func(props map[string]any) {
			props["timeout_seconds"] = map[string]any{"anyOf": []any{map[string]any{"type": "number", "exclusiveMinimum": 0}, map[string]any{"type": "null"}}, "default": nil}
		}},
	}
	for _, ed := range edits {
		t.Run("detects: "+ed.want, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{"index.json", "ModelEventEnvelope.json"} {
				b, err := os.ReadFile(filepath.Join(testkit.SchemaDir(t), name))
				if err != nil {
					t.Fatal(err)
				}
				if name == "ModelEventEnvelope.json" {
					var s map[string]any
					if err := json.Unmarshal(b, &s); err != nil {
						t.Fatal(err)
					}
					ed.edit(s["properties"].(map[string]any))
					if b, err = json.Marshal(s); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := envelopeDrift(t, dir)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, ed.want) }) {
				t.Errorf("the edited schema does not yield %q; problems:\n%s", ed.want, strings.Join(got, "\n"))
			}
		})
	}
}
