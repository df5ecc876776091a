package envelope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// The current wire format is the pinned Python package's (omnibase-infra
// 0.38.76, omnibase-core 0.47.57): interop/golden holds records it
// produced, interop/schemas the JSON Schemas of its models. The fixtures in
// ../shared/fixtures (fixtures_test.go) are an older version, kept as the
// compatibility floor: they must still decode.

func readGolden(t testing.TB, name string) []byte { return testkit.Golden(t, name) }

// goldenEnvelopeNames lists the current goldens whose value is an envelope
// (a JSON object with a "payload" member); the others are bare models and
// raw request bodies.
func goldenEnvelopeNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testkit.GoldenDir(t), "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, ".record.json") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(b, &top) == nil && top["payload"] != nil {
			out = append(out, filepath.Base(f))
		}
	}
	sort.Strings(out)
	if len(out) < 5 {
		t.Fatalf("only %d envelope goldens in %s", len(out), testkit.GoldenDir(t))
	}
	return out
}

// The records of the current Python package round-trip byte for byte:
// every one of the 22 fields, in order, with envelope_version 2.3.0.
func TestCurrentGoldenEnvelopesRoundTrip(t *testing.T) {
	for _, name := range goldenEnvelopeNames(t) {
		t.Run(name, func(t *testing.T) {
			in := readGolden(t, name)
			e, err := Decode(in)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			out, err := e.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("Encode(Decode(x)) != x\n got: %s\nwant: %s", out, in)
			}
			if canon, err := Canonicalize(in); err != nil || !bytes.Equal(canon, in) {
				t.Fatalf("Canonicalize differs: %v", err)
			}
			if e.EnvelopeVersion.String() != EnvelopeVersion.String() {
				t.Errorf("envelope_version %s, want the default %s", e.EnvelopeVersion, EnvelopeVersion)
			}
			te, unknown, err := DecodeTolerant(in)
			if err != nil || len(unknown) != 0 {
				t.Fatalf("DecodeTolerant: unknown %v, err %v", unknown, err)
			}
			if !reflect.DeepEqual(te, e) {
				t.Errorf("DecodeTolerant differs from Decode:\n%+v\n%+v", te, e)
			}
		})
	}
}

// An envelope Go builds with New is what Python writes by default: the
// golden heartbeat's envelope fields, rebuilt from its values, are its
// bytes.
func TestNewMatchesCurrentGolden(t *testing.T) {
	in := readGolden(t, "heartbeat.json")
	g, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(g.Payload, WithEnvelopeID(g.EnvelopeID), WithCorrelationID(*g.CorrelationID), WithTimestamp(g.EnvelopeTimestamp.Time))
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("New(...).Encode()\n got: %s\nwant: %s", out, in)
	}
}

// withNewFieldsNull is an old (envelope 2.1.0, 19-field) fixture as Encode
// writes it now: the three fields added since, null, in their places.
func withNewFieldsNull(t testing.TB, old []byte) []byte {
	t.Helper()
	s := string(old)
	// The envelope's own keys follow the payload, so the last occurrence
	// is the envelope's.
	insert := func(before, add string) {
		i := strings.LastIndex(s, before)
		if i < 0 {
			t.Fatalf("fixture has no %q", before)
		}
		s = s[:i] + add + s[i:]
	}
	insert(`"source_tool": `, `"parent_envelope_id": null, `)
	insert(`"onex_version": `, `"tenant_id": null, "producer": null, `)
	return []byte(s)
}

// The correlation-id peek every consumer runs finds each current record's
// envelope correlation_id.
func TestPeekCorrelationIDGolden(t *testing.T) {
	for _, name := range goldenEnvelopeNames(t) {
		in := readGolden(t, name)
		e, err := Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := PeekCorrelationID(in); !ok || e.CorrelationID == nil || id != *e.CorrelationID {
			t.Errorf("%s: peek %s %v, envelope %v", name, id, ok, e.CorrelationID)
		}
	}
}
