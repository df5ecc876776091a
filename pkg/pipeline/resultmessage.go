package pipeline

import (
	"errors"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// errWritesJSON stands for the protobuf encoding not tried: the process
// writes its internal records as JSON (WritesJSON).
var errWritesJSON = errors.New("internal records are written as JSON")

// EffectResultMessage builds the record an effect sends for res on topic,
// keyed by node_id, with envelope id id (each effect derives it from the
// intent and its attempt, so a redelivered intent yields a result consumers
// can deduplicate): a protobuf onex.fleet.v1.EffectResult with the content
// type that says so, or the older JSON form, an ONEX envelope naming tool
// as its source tool, which the orchestrator reads too. The JSON form is
// written when the process writes JSON (ONEX_INTERNAL_WIRE=json) and for a
// result protobuf refuses (a string that is no valid UTF-8, from a
// backend's error text): a result is never lost to its encoding.
func EffectResultMessage(topic, source, tool string, id uuid.UUID, res *EffectResult) (*sarama.ProducerMessage, error) {
	h := envelope.NewHeaders(topic, source)
	h.CorrelationID, h.MessageID = res.CorrelationID, id
	rec := EffectResultRecord{Result: res, EnvelopeID: id, CreatedAt: h.Timestamp}
	b, err := []byte(nil), errWritesJSON
	if !WritesJSON() {
		b, err = MarshalEffectResult(rec)
	}
	if err == nil {
		h.ContentType = EffectResultContentType
	} else if b, err = MarshalEffectResultJSON(rec, envelope.WithEventType(envelope.EventTypeFromTopic(topic)),
		envelope.WithSourceTool(tool)); err != nil {
		return nil, err
	}
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(res.NodeID.String()), Value: sarama.ByteEncoder(b)}
	msg.Headers = append(msg.Headers, h.Records()...)
	return msg, nil
}
