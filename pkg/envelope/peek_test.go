package envelope

import (
	"os"
	"path/filepath"
	"testing"
)

var peekSeeds = []string{
	`{"correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d","payload":{}}`,
	`{"payload":{"correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"}}`, // nested: not the body's
	`{"correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d","correlation_id":"e1d2c3b4-a5f6-4789-9abc-def012345678"}`,
	`{"correlation_id":"e1d2c3b4-a5f6-4789-9abc-def012345678","correlation_id":"nope"}`,
	`{"correlation\u005fid":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"}`,
	`{"correlation_id":"b7e3c1d2\u002d4a5f-4e6b-8c9d-0e1f2a3b4c5d"}`,
	`{"correlation_id":"{b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d}"}`,
	`{"correlation_id":"urn:uuid:b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"}`,
	`{"correlation_id":"b7e3c1d24a5f4e6b8c9d0e1f2a3b4c5d"}`,
	`{"correlation_id":null}`,
	`{"a":[1,{"b":"}"}],"x":-1.5e3,"t":true, "correlation_id" : "b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d" }`,
	`{"s":"a\"b\\","correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"}`,
	`{"correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d" "broken"`, // not JSON: the reference decides
	`["correlation_id","b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"]`,
	`{}`, ``, `"x"`, `  {  }  `,
}

// The scanner agrees with the token walk on every input.
func FuzzPeekCorrelationID(f *testing.F) {
	for _, s := range peekSeeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("../../../shared/fixtures/*.json")
	golden, _ := filepath.Glob("../../interop/golden/*.json")
	if files = append(files, golden...); len(files) > 0 {
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		gotID, gotOK := PeekCorrelationID(v)
		wantID, wantOK := peekTokens(v)
		if gotID != wantID || gotOK != wantOK {
			t.Fatalf("PeekCorrelationID(%q) = %v, %v; peekTokens = %v, %v", v, gotID, gotOK, wantID, wantOK)
		}
	})
}

func BenchmarkPeekCorrelationID(b *testing.B) {
	v, err := os.ReadFile("../../../shared/fixtures/introspection-effect.json")
	if err != nil {
		b.Skip("fixtures not found:", err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			PeekCorrelationID(v)
		}
	})
	b.Run("tokens", func(b *testing.B) {
		for b.Loop() {
			peekTokens(v)
		}
	})
}
