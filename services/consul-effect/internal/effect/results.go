package effect

import (
	"fmt"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// Results builds the records of effect results, keyed by node_id, for the
// results topic; the runner sends them.
type Results struct {
	Topic  string
	Source string
}

// Record encodes one result (pipeline.EffectResultMessage). The envelope id
// is derived from the intent and its delivery attempt, so a redelivered
// intent yields a result consumers can deduplicate.
func (r Results) Record(res *pipeline.EffectResult) (*sarama.ProducerMessage, error) {
	id := uuid.NewSHA1(res.IntentID, fmt.Appendf(nil, "effect-result:%s:%d", backend.Name, res.Attempt))
	msg, err := pipeline.EffectResultMessage(r.Topic, r.Source, "consul-effect", id, res)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Operation: "encode_result", CorrelationID: res.CorrelationID}, "effect result", err)
	}
	return msg, nil
}
