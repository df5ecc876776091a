package dlqcmd

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/dlq/replay"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// show prints a protobuf original's protojson as JSON, not as the escaped
// string the DLQ body holds, and does not try to read it as an envelope.
func TestDetailOfProtobuf(t *testing.T) {
	value, err := proto.Marshal(&fleetv1.ReducerInput{Topic: "node-heartbeat",
		Body: &fleetv1.ReducerInput_Heartbeat{Heartbeat: &fleetv1.Heartbeat{NodeId: "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"}}})
	if err != nil {
		t.Fatal(err)
	}
	entry := func(value []byte) *replay.Entry {
		orig := &sarama.ConsumerMessage{Topic: topics.ReducerInput, Value: value,
			Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.ReducerInputContentType)}}}
		pm, err := dlq.Build(orig, dlq.Failure{Err: errors.New("x")}, "test", time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		m := &sarama.ConsumerMessage{Topic: pm.Topic}
		m.Value, _ = pm.Value.Encode()
		for i := range pm.Headers {
			m.Headers = append(m.Headers, &pm.Headers[i])
		}
		return replay.NewEntry(m)
	}

	d := detailOf(entry(value))
	want := `{"topic":"node-heartbeat","heartbeat":{"node_id":"6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b"}}`
	if string(d.OriginalValue) != want || d.OriginalEncoding != dlq.EncodingProtoJSON || d.OriginalContentType != pipeline.ReducerInputContentType {
		t.Errorf("original %s %q %q", d.OriginalValue, d.OriginalEncoding, d.OriginalContentType)
	}
	if d.Envelope != nil || d.EnvelopeError != "" {
		t.Errorf("read as an envelope: %s %q", d.Envelope, d.EnvelopeError)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		OriginalValue map[string]any `json:"original_value"`
	}
	if err := json.Unmarshal(out, &shown); err != nil || shown.OriginalValue["topic"] != "node-heartbeat" {
		t.Errorf("original_value is not shown as a JSON object: %s (%v)", out, err)
	}

	d = detailOf(entry([]byte{0xff}))
	if d.OriginalValue != nil || d.OriginalEncoding != dlq.EncodingBase64 || d.ReplayDecision == nil || d.ReplayDecision.Action != replay.ActionReplay {
		t.Errorf("base64 original: %s %q %+v", d.OriginalValue, d.OriginalEncoding, d.ReplayDecision)
	}
}
