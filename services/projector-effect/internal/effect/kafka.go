package effect

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
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

// Message encodes one result as the record PublishResults sends
// (pipeline.EffectResultMessage).
func (k *KafkaResults) Message(r *pipeline.EffectResult) (*sarama.ProducerMessage, error) {
	msg, err := pipeline.EffectResultMessage(k.Topic, k.Source, "projector-effect", ResultEnvelopeID(r), r)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_result", CorrelationID: r.CorrelationID}, "effect result", err)
	}
	return msg, nil
}

// PublishResults sends the results as one batch and returns once the broker
// acknowledged every one (the failed results sent while a batch waits; the
// runner sends the rest with Message's records).
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
