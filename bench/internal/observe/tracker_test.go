package observe

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// A successful consul.register result marks the node's Consul time in
// either form of the results topic; other results do not.
func TestConsulResultBothForms(t *testing.T) {
	hs := func(ct string) []*sarama.RecordHeader {
		return []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(ct)}}
	}
	for _, tc := range []struct {
		name    string
		typ     string
		success bool
		want    bool
	}{
		{"register applied", pipeline.ConsulRegister, true, true},
		{"register failed", pipeline.ConsulRegister, false, false},
		{"deregister applied", pipeline.ConsulDeregister, true, false},
	} {
		for _, form := range []string{pipeline.EffectResultContentType, pipeline.ContentTypeJSON} {
			tr := NewTracker()
			node := uuid.New()
			tr.Introduce(node, time.Now())
			rec := pipeline.EffectResultRecord{Result: &pipeline.EffectResult{IntentID: uuid.New(), IntentType: tc.typ, NodeID: node,
				Success: tc.success}, EnvelopeID: uuid.New()}
			var (
				v   []byte
				err error
			)
			if form == pipeline.ContentTypeJSON {
				v, err = pipeline.MarshalEffectResultJSON(rec, envelope.WithSourceTool("consul-effect"))
			} else {
				v, err = pipeline.MarshalEffectResult(rec)
			}
			if err != nil {
				t.Fatal(err)
			}
			tr.consulResult(hs(form), v)
			tr.mu.Lock()
			got := !tr.nodes[node].Consul.IsZero()
			tr.mu.Unlock()
			if got != tc.want {
				t.Errorf("%s (%s): marked %v, want %v", tc.name, form, got, tc.want)
			}
		}
	}
}
