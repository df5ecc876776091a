package ingress

import (
	"testing"

	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
)

// The cost of checking one node record (envelope and payload decode), per
// topic, on the golden Python records.
func benchValidate(b *testing.B, topic string, value []byte) {
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	lim := DefaultLimits()
	for b.Loop() {
		if _, reason, err := Validate(topic, value, now, lim); err != nil {
			b.Fatal(reason, err)
		}
	}
}

func BenchmarkValidateHeartbeat(b *testing.B) {
	s := setB(b)
	benchValidate(b, topics.NodeHeartbeat, s.HeartbeatRaw)
}

func BenchmarkValidateIntrospection(b *testing.B) {
	s := setB(b)
	benchValidate(b, topics.NodeIntrospection, s.IntrospectionRaw)
}

// The current Python package's heartbeat, with a flow window.
func BenchmarkValidateGoldenHeartbeat(b *testing.B) {
	s, err := fixtures.LoadGoldenSet()
	if err != nil {
		b.Fatal(err)
	}
	benchValidate(b, topics.NodeHeartbeat, s.HeartbeatRaw)
}
