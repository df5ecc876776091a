package effect

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// recordHeaders are a produced record's headers as a consumer sees them.
func recordHeaders(m *sarama.ProducerMessage) []*sarama.RecordHeader {
	hs := make([]*sarama.RecordHeader, len(m.Headers))
	for i := range m.Headers {
		hs[i] = &m.Headers[i]
	}
	return hs
}

// A result is written in protobuf with its content type, keyed by node id,
// with the deterministic envelope id as message_id; a result protobuf
// refuses (an error text that is no valid UTF-8) falls back to the JSON
// envelope, which the orchestrator reads too.
func TestKafkaResultsMessage(t *testing.T) {
	k := &KafkaResults{Topic: "onex.evt.platform.effect-results.v1", Source: "test"}
	code := "POSTGRES_CONNECTION_ERROR"
	for _, tc := range []struct {
		name, text, wantCT string
		wire               pipeline.Wire
	}{
		{"protobuf", "postgres operation failed: connection refused", pipeline.EffectResultContentType, pipeline.WireProtobuf},
		{"not UTF-8", "postgres operation failed: \xff", pipeline.ContentTypeJSON, pipeline.WireProtobuf},
		{"ONEX_INTERNAL_WIRE=json", "postgres operation failed: connection refused", pipeline.ContentTypeJSON, pipeline.WireJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pipeline.SetWrites(tc.wire)
			t.Cleanup(func() { pipeline.SetWrites(pipeline.WireProtobuf) })
			text := tc.text
			r := &pipeline.EffectResult{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Backend: "postgres", NodeID: uuid.New(),
				CorrelationID: uuid.New(), RegistrationAttemptID: uuid.New(), Sequence: 4, Attempt: 2, Retriable: true, Error: &text,
				ErrorCode: &code, DurationMS: 1.5, BackendID: "pg", Completed: pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))}
			m, err := k.Message(r)
			if err != nil {
				t.Fatal(err)
			}
			hs := recordHeaders(m)
			if ct := pipeline.ContentType(hs); ct != tc.wantCT {
				t.Fatalf("content type %q, want %q", ct, tc.wantCT)
			}
			if key, _ := m.Key.Encode(); string(key) != r.NodeID.String() {
				t.Fatalf("key %s", key)
			}
			v, _ := m.Value.Encode()
			rec, err := pipeline.DecodeEffectResultRecord(hs, v)
			if err != nil {
				t.Fatal(err)
			}
			h := envelope.HeadersFromRecords(hs)
			if rec.EnvelopeID != ResultEnvelopeID(r) || h.MessageID != rec.EnvelopeID || h.CorrelationID != r.CorrelationID ||
				!rec.CreatedAt.Equal(h.Timestamp) {
				t.Fatalf("envelope id %s, message_id %s, correlation %s, created %s (header %s)", rec.EnvelopeID, h.MessageID,
					h.CorrelationID, rec.CreatedAt, h.Timestamp)
			}
			got := rec.Result
			if got.IntentID != r.IntentID || got.NodeID != r.NodeID || got.Attempt != 2 || got.Sequence != 4 || !got.Retriable ||
				got.ErrorCode == nil || *got.ErrorCode != code || got.Error == nil || !got.Completed.Equal(r.Completed.Time) {
				t.Fatalf("decoded %+v, want %+v", got, r)
			}
		})
	}
}
