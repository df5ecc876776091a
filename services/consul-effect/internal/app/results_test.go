package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// A result is written in protobuf with its content type, keyed by node id,
// with the envelope id derived from the intent and its delivery attempt as
// message_id; a result protobuf refuses (an agent error text that is no
// valid UTF-8) falls back to the JSON envelope, which the orchestrator
// reads too.
func TestResultMessage(t *testing.T) {
	r := &results{topic: "onex.evt.platform.effect-results.v1", source: "test"}
	code := "CONSUL_CONNECTION_ERROR"
	for _, tc := range []struct {
		name, text, wantCT string
		wire               pipeline.Wire
	}{
		{"protobuf", "consul operation failed: connection refused", pipeline.EffectResultContentType, pipeline.WireProtobuf},
		{"not UTF-8", "consul operation failed: \xff", pipeline.ContentTypeJSON, pipeline.WireProtobuf},
		{"ONEX_INTERNAL_WIRE=json", "consul operation failed: connection refused", pipeline.ContentTypeJSON, pipeline.WireJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pipeline.SetWrites(tc.wire)
			t.Cleanup(func() { pipeline.SetWrites(pipeline.WireProtobuf) })
			text := tc.text
			res := &pipeline.EffectResult{IntentID: uuid.New(), IntentType: pipeline.ConsulRegister, Backend: "consul", NodeID: uuid.New(),
				CorrelationID: uuid.New(), RegistrationAttemptID: uuid.New(), Sequence: 2, Attempt: 1, Retriable: true, Error: &text,
				ErrorCode: &code, DurationMS: 0.75, BackendID: "agent", Completed: pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))}
			m, err := r.message(res)
			if err != nil {
				t.Fatal(err)
			}
			hs := make([]*sarama.RecordHeader, len(m.Headers))
			for i := range m.Headers {
				hs[i] = &m.Headers[i]
			}
			if ct := pipeline.ContentType(hs); ct != tc.wantCT {
				t.Fatalf("content type %q, want %q", ct, tc.wantCT)
			}
			if key, _ := m.Key.Encode(); string(key) != res.NodeID.String() {
				t.Fatalf("key %s", key)
			}
			v, _ := m.Value.Encode()
			rec, err := pipeline.DecodeEffectResultRecord(hs, v)
			if err != nil {
				t.Fatal(err)
			}
			h := envelope.HeadersFromRecords(hs)
			id := uuid.NewSHA1(res.IntentID, fmt.Appendf(nil, "effect-result:%s:%d", backend.Name, res.Attempt))
			if rec.EnvelopeID != id || h.MessageID != id || h.CorrelationID != res.CorrelationID || !rec.CreatedAt.Equal(h.Timestamp) {
				t.Fatalf("envelope id %s (want %s), message_id %s, correlation %s", rec.EnvelopeID, id, h.MessageID, h.CorrelationID)
			}
			got := rec.Result
			if got.IntentID != res.IntentID || got.NodeID != res.NodeID || got.Attempt != 1 || got.Sequence != 2 || !got.Retriable ||
				got.ErrorCode == nil || *got.ErrorCode != code || got.Error == nil || got.BackendID != "agent" {
				t.Fatalf("decoded %+v, want %+v", got, res)
			}
		})
	}
}
