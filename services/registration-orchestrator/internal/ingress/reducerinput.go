package ingress

import (
	"time"

	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// reducerInput is the reducer input of an accepted record of topic (its
// registry name), received at now: the value byte for byte, and for a
// heartbeat the fields the reducer decides on, which the record then
// carries instead (wire.InputMessage). The value stays set for the JSON
// form, should the protobuf one fail.
func (a Accepted) reducerInput(topic string, now time.Time, value []byte) pipeline.ReducerInput {
	return pipeline.ReducerInput{Topic: topic, ReceivedAt: pipeline.T(now), Value: value, Heartbeat: a.Heartbeat}
}
