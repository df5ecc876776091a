package envelope

import (
	"encoding/json"
	"testing"
)

// The fleet decodes every record it consumes with Decode; these give its
// cost per record next to encoding/json's generic decode of the same bytes.
func benchDecode(b *testing.B, fixture string) {
	data := readFixture(b, fixture)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHeartbeat(b *testing.B)     { benchDecode(b, "heartbeat.json") }
func BenchmarkDecodeIntrospection(b *testing.B) { benchDecode(b, "introspection-effect.json") }

func BenchmarkStdlibUnmarshalHeartbeat(b *testing.B) {
	data := readFixture(b, "heartbeat.json")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			b.Fatal(err)
		}
	}
}
