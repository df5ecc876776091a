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

// KafkaResults publishes effect results as ONEX envelopes keyed by node_id,
// with the intent's correlation id, through a bus.Producer.
type KafkaResults struct {
	Producer *bus.Producer
	Topic    string
	// Source is the Kafka header "source" (the bus environment).
	Source string
}

// ResultEnvelopeID is the envelope id of a result: derived from the intent,
// its delivery attempt and the outcome, so a redelivered intent yields the
// same ids (consumers may deduplicate) while the success that follows a
// failure of the same attempt is a distinct message.
func ResultEnvelopeID(r *pipeline.EffectResult) uuid.UUID {
	outcome := "failed"
	if r.Success {
		outcome = "applied"
	}
	return uuid.NewSHA1(r.IntentID, fmt.Appendf(nil, "effect-result:%s:%d:%s", store.Backend, r.Attempt, outcome))
}

// Message encodes one result as the record PublishResults sends.
func (k *KafkaResults) Message(r *pipeline.EffectResult) (*sarama.ProducerMessage, error) {
	id := ResultEnvelopeID(r)
	env, err := envelope.New(r,
		envelope.WithEnvelopeID(id),
		envelope.WithCorrelationID(r.CorrelationID),
		envelope.WithEventType(envelope.EventTypeFromTopic(k.Topic)),
		envelope.WithSourceTool("projector-effect"),
		envelope.WithPayloadType("EffectResult"),
		envelope.WithTag("message_category", "event"),
	)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_result", CorrelationID: r.CorrelationID}, "effect result", err)
	}
	b, err := env.Encode()
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_result", CorrelationID: r.CorrelationID}, "effect result", err)
	}
	h := envelope.NewHeaders(k.Topic, k.Source)
	h.CorrelationID, h.MessageID = r.CorrelationID, id
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
