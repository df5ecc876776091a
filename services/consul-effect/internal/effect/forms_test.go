package effect

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// An intent record decodes to the same prepared intent whichever form it
// has: the JSON envelope, or the protobuf the reducer writes (header
// content_type), and a protobuf record of another message is a content
// error.
func TestPrepareBothForms(t *testing.T) {
	node, corr := uuid.New(), uuid.New()
	port, addr := 8080, "10.0.0.7"
	id := node.String()
	for _, tc := range []struct {
		typ     string
		payload any
	}{
		{pipeline.ConsulRegister, pipeline.ConsulRegisterPayload{IntentType: pipeline.ConsulRegister, CorrelationID: corr, NodeID: &id,
			ServiceID: "onex-" + id, ServiceName: "svc", Tags: []string{"onex"}, Address: &addr, Port: &port, Health: pipeline.HealthWarning}},
		{pipeline.ConsulDeregister, pipeline.ConsulDeregisterPayload{IntentType: pipeline.ConsulDeregister, CorrelationID: corr,
			NodeID: id, ServiceID: "onex-" + id}},
	} {
		pl, err := json.Marshal(tc.payload)
		if err != nil {
			t.Fatal(err)
		}
		in := &pipeline.Intent{IntentID: uuid.New(), IntentType: tc.typ, Target: "consul://x", Payload: pl, Priority: 1,
			NodeID: node, Sequence: 4, RegistrationAttemptID: uuid.New(), Attempt: 1}
		rec := pipeline.IntentRecord{Intent: in, EnvelopeID: in.IntentID, CreatedAt: time.Now(), CorrelationID: corr}
		js, err := pipeline.MarshalIntentJSON(rec)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := pipeline.MarshalIntent(rec)
		if err != nil {
			t.Fatal(err)
		}
		h := NewHandler(NewRegistrar(nil, "test", nil), testResults, nil, 1)
		a, err := h.prepare(&bus.Message{Topic: "consul-intents", Value: js, CorrelationID: uuid.New()})
		if err != nil {
			t.Fatalf("%s json: %v", tc.typ, err)
		}
		b, err := h.prepare(&bus.Message{Topic: "consul-intents", Value: pb, CorrelationID: uuid.New(),
			Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}})
		if err != nil {
			t.Fatalf("%s protobuf: %v", tc.typ, err)
		}
		if a.corr != corr || b.corr != corr || a.serviceID != b.serviceID || !reflect.DeepEqual(a.desired, b.desired) ||
			a.in.IntentID != b.in.IntentID || a.in.Sequence != b.in.Sequence || a.in.Attempt != b.in.Attempt ||
			a.in.RegistrationAttemptID != b.in.RegistrationAttemptID {
			t.Errorf("%s: json form %+v %+v, protobuf form %+v %+v", tc.typ, a, a.in, b, b.in)
		}
		_, err = h.prepare(&bus.Message{Topic: "consul-intents", Value: pb,
			Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.ReducerInputContentType)}}})
		if err == nil {
			t.Errorf("%s: a record of another message was accepted", tc.typ)
		}
	}
}
