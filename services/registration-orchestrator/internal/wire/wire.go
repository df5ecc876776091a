// Package wire builds the records the orchestrator publishes: canonical
// reducer inputs, ONEX envelopes and the standard Kafka headers.
package wire

import (
	"context"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// InputMessage builds a reducer input record keyed by key: ri in protobuf
// (pipeline.MarshalReducerInput) with the standard headers and the content
// type that says so; in the JSON form when the process writes JSON
// (ONEX_INTERNAL_WIRE=json). Should ri not encode (a topic that is no valid UTF-8,
// which a Kafka topic name never is), it is written in the JSON form with
// the JSON content type instead: the reducer reads both, and a record is
// never lost to its encoding.
func InputMessage(topic, key string, ri pipeline.ReducerInput, source string, correlationID uuid.UUID) *sarama.ProducerMessage {
	if pipeline.WritesJSON() {
		// ONEX_INTERNAL_WIRE=json: the form every reducer reads.
	} else if v, err := pipeline.MarshalReducerInput(ri); err == nil {
		m := Message(topic, key, v, source, correlationID)
		m.Headers = pipeline.SetContentType(m.Headers, pipeline.ReducerInputContentType)
		return m
	}
	ri.Heartbeat = nil
	line, _ := pipeline.ReducerInputLine(ri) // the caller has decoded the value: one JSON value
	return Message(topic, key, line, source, correlationID)
}

// IntentMessage builds the record that routes an intent record to an
// effect: its value unchanged, with the standard headers and the content
// type it came with (contentType, as the intent record had it; "" or JSON
// keeps the default application/json).
func IntentMessage(topic, key, contentType string, value []byte, source string, correlationID uuid.UUID) *sarama.ProducerMessage {
	m := Message(topic, key, value, source, correlationID)
	if !pipeline.IsJSON(contentType) {
		m.Headers = pipeline.SetContentType(m.Headers, contentType)
	}
	return m
}

// Headers returns the ONEX headers (spec 1.5) for a record on topic: the
// envelope-publish defaults with source = the bus environment, and the given
// correlation id (a fresh one when nil) instead of a random one, so the header
// agrees with the body.
func Headers(topic, source string, correlationID uuid.UUID) []sarama.RecordHeader {
	h := envelope.NewHeaders(topic, source)
	if correlationID != uuid.Nil {
		h.CorrelationID = correlationID
	}
	return h.Records()
}

// Envelope wraps payload in an ONEX envelope for topic: the given envelope id
// (deterministic ids make republished records dedupable), correlation id,
// event_type derived from the topic, and the message category tag.
func Envelope(payload any, topic string, id, correlationID uuid.UUID, payloadType, category string) ([]byte, error) {
	env, err := envelope.New(payload,
		envelope.WithEnvelopeID(id),
		envelope.WithCorrelationID(correlationID),
		envelope.WithEventType(envelope.EventTypeFromTopic(topic)),
		envelope.WithSourceTool("registration-orchestrator"),
		envelope.WithPayloadType(payloadType),
		envelope.WithTag("message_category", category),
	)
	if err != nil {
		return nil, err
	}
	return env.Encode()
}

// Message builds a producer record with the standard headers.
func Message(topic, key string, value []byte, source string, correlationID uuid.UUID) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Headers: Headers(topic, source, correlationID)}
	if key != "" {
		m.Key = sarama.StringEncoder(key)
	}
	if value != nil {
		m.Value = sarama.ByteEncoder(value)
	}
	return m
}

// LastRecord returns the value of the last record of one partition, or
// ok=false when the partition is empty or cannot be read within 5 seconds.
// It is how a new leader learns what the previous one published last.
func LastRecord(ctx context.Context, client sarama.Client, topic string, partition int32) ([]byte, bool) {
	end, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return nil, false
	}
	oldest, err := client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil || end <= oldest {
		return nil, false
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, false
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, end-1)
	if err != nil {
		return nil, false
	}
	defer pc.Close()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case m := <-pc.Messages():
		if m == nil {
			return nil, false
		}
		return m.Value, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}
