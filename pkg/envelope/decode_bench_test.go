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

// The current Python package's records (envelope 2.3.0, 22 fields), and the
// tolerant decode ingress uses for node records.
func benchDecodeGolden(b *testing.B, name string, tolerant bool) {
	data := readGolden(b, name)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if tolerant {
			_, _, err = DecodeTolerant(data)
		} else {
			_, err = Decode(data)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGoldenHeartbeat(b *testing.B) {
	benchDecodeGolden(b, "heartbeat-flow-window.json", false)
}

func BenchmarkDecodeTolerantGoldenHeartbeat(b *testing.B) {
	benchDecodeGolden(b, "heartbeat-flow-window.json", true)
}
