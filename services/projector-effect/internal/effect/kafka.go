package effect

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// KafkaResults publishes effect results keyed by node_id, with the intent's
// correlation id, through a bus.Producer: protobuf onex.fleet.v1.EffectResult
// records (pipeline.MarshalEffectResult) with the content type that says so.
type KafkaResults struct {
	Producer *bus.Producer
	Topic    string
	// Source is the Kafka header "source" (the bus environment).
	Source string
}

// ResultEnvelopeID is the envelope id of a result (the record's envelope_id
// and message_id header): derived from the intent, its delivery attempt and
// the outcome, so a redelivered intent yields the same ids (consumers may
// deduplicate) while the success that follows a failure of the same attempt
// is a distinct message.
func ResultEnvelopeID(r *pipeline.EffectResult) uuid.UUID {
	outcome := "failed"
	if r.Success {
		outcome = "applied"
	}
	return uuid.NewSHA1(r.IntentID, fmt.Appendf(nil, "effect-result:%s:%d:%s", store.Backend, r.Attempt, outcome))
}

// errWritesJSON stands for the protobuf encoding not tried: the process
// writes its internal records as JSON (pipeline.WritesJSON).
var errWritesJSON = errors.New("effect: internal records are written as JSON")

// Message encodes one result as the record PublishResults sends: protobuf,
// or the JSON form when the process writes JSON (ONEX_INTERNAL_WIRE=json).
// A result protobuf refuses (a string that is no valid UTF-8, from a backend's error
// text) is written in the older JSON form, an ONEX envelope, with the JSON
// content type instead: the orchestrator reads both, and a result is never
// lost to its encoding.
func (k *KafkaResults) Message(r *pipeline.EffectResult) (*sarama.ProducerMessage, error) {
	h := envelope.NewHeaders(k.Topic, k.Source)
	h.CorrelationID, h.MessageID = r.CorrelationID, ResultEnvelopeID(r)
	rec := pipeline.EffectResultRecord{Result: r, EnvelopeID: h.MessageID, CreatedAt: h.Timestamp}
	b, err := []byte(nil), errWritesJSON
	if !pipeline.WritesJSON() {
		b, err = pipeline.MarshalEffectResult(rec)
	}
	if err == nil {
		h.ContentType = pipeline.EffectResultContentType
	} else if b, err = pipeline.MarshalEffectResultJSON(rec, envelope.WithEventType(envelope.EventTypeFromTopic(k.Topic)),
		envelope.WithSourceTool("projector-effect")); err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_result", CorrelationID: r.CorrelationID}, "effect result", err)
	}
	msg := &sarama.ProducerMessage{Topic: k.Topic, Key: sarama.StringEncoder(r.NodeID.String()), Value: sarama.ByteEncoder(b)}
	msg.Headers = append(msg.Headers, h.Records()...)
	return msg, nil
}

// PublishResults sends the results as one batch and returns once the broker
// acknowledged every one.
func (k *KafkaResults) PublishResults(ctx context.Context, rs []*pipeline.EffectResult) error {
	msgs := make([]*sarama.ProducerMessage, 0, len(rs))
	for _, r := range rs {
		m, err := k.Message(r)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := k.Producer.Send(ctx, msgs...); err != nil {
		var ie *infraerr.Error
		if errors.As(err, &ie) {
			return err
		}
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: k.Topic}, "effect results", err)
	}
	return nil
}

// KafkaDLQ parks poison records through pkg/dlq's raw-path publisher.
type KafkaDLQ struct {
	Publisher *dlq.Publisher
}

// DeadLetter writes msg's DLQ record and returns once the broker acknowledged it.
func (d KafkaDLQ) DeadLetter(ctx context.Context, msg *sarama.ConsumerMessage, corr uuid.UUID, cause error) error {
	class := dlq.ClassConsumerError
	if infraerr.IsContent(cause) {
		class = dlq.ClassPublisherMalformed
	}
	return d.Publisher.Publish(ctx, msg, dlq.Failure{Err: cause, Class: class, CorrelationID: corr})
}
