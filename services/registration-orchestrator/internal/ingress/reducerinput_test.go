package ingress

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// sentInput decodes a reducer input record ingress sent, which must be in
// protobuf and say so.
func sentInput(t *testing.T, pm *sarama.ProducerMessage) pipeline.ReducerInput {
	t.Helper()
	headers := make([]*sarama.RecordHeader, len(pm.Headers))
	for i := range pm.Headers {
		headers[i] = &pm.Headers[i]
	}
	if ct := pipeline.ContentType(headers); ct != pipeline.ReducerInputContentType {
		t.Fatalf("content type %q, want %q", ct, pipeline.ReducerInputContentType)
	}
	v, err := pm.Value.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ri, err := pipeline.DecodeReducerInput(headers, v)
	if err != nil {
		t.Fatal(err)
	}
	return ri
}

// Ingress forwards an introspection or ack with its value byte for byte,
// and a heartbeat as the fields it decoded: the reducer decodes no JSON
// for it. The orchestrator's receive time is in both.
func TestReducerInputForwarded(t *testing.T) {
	s := set(t)
	at := time.Date(2026, 3, 2, 14, 5, 7, 500000000, time.UTC)
	h := NewHandler(map[string]string{"hb": topics.NodeHeartbeat, "intro": topics.NodeIntrospection}, "reducer-input", "test",
		Limits{MaxBytes: 1 << 20}, NewMetrics(nil))
	h.now = func() time.Time { return at }

	var sent []*sarama.ProducerMessage
	hbValue := s.Heartbeat().Value
	for _, msg := range []*bus.Message{{Topic: "intro", Value: s.IntrospectionRaw}, {Topic: "hb", Value: hbValue}} {
		out, err := h.Handle(context.Background(), []*bus.Message{msg})
		if err != nil || out.Outcomes != nil {
			t.Fatalf("Handle: %v, outcomes %v", err, out.Outcomes)
		}
		sent = append(sent, out.Records...)
	}
	if len(sent) != 2 {
		t.Fatalf("%d records, want 2", len(sent))
	}

	intro := sentInput(t, sent[0])
	if intro.Topic != topics.NodeIntrospection || !intro.ReceivedAt.Equal(at) || string(intro.Value) != string(s.IntrospectionRaw) || intro.Heartbeat != nil {
		t.Errorf("introspection forwarded as %s %s %.60s %v", intro.Topic, intro.ReceivedAt, intro.Value, intro.Heartbeat)
	}

	hb := sentInput(t, sent[1])
	env, _, err := envelope.DecodeTolerant(hbValue)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := registration.DecodeHeartbeatEventTolerant(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if hb.Topic != topics.NodeHeartbeat || !hb.ReceivedAt.Equal(at) || len(hb.Value) != 0 || hb.Heartbeat == nil {
		t.Fatalf("heartbeat forwarded as %+v", hb)
	}
	if g := hb.Heartbeat; g.NodeID != want.NodeID || envelope.FormatTime(g.Timestamp) != envelope.FormatTime(want.Timestamp.Time) ||
		(g.CorrelationID == nil) != (want.CorrelationID == nil) || g.CorrelationID != nil && *g.CorrelationID != *want.CorrelationID {
		t.Errorf("heartbeat forwarded as %+v, want node %s at %s, correlation %v", g, want.NodeID, want.Timestamp, want.CorrelationID)
	}
	if k, _ := sent[1].Key.Encode(); string(k) != want.NodeID.String() {
		t.Errorf("heartbeat key %s", k)
	}
	// The protobuf record is a fraction of the JSON it replaces.
	if v, _ := sent[1].Value.Encode(); len(v)*3 > len(hbValue) {
		t.Errorf("heartbeat reducer input is %d bytes for a %d-byte heartbeat", len(v), len(hbValue))
	}
}
