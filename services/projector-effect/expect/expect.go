// Package expect is the projector effect's side of its contract
// (contracts/projector-effect/contract.yaml): its handler, the topics the
// code uses (results, and the operator commands of the admin API), the intent types it executes and the error-handling sections it
// reads. pkg/contract checks the contract against it when the projector
// starts and in `onexctl contracts validate`, so the file cannot drift from
// the code.
package expect

import (
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Service is the projector's directory under the contracts directory.
const Service = "projector-effect"

// HandlerIntents serves the postgres intents topic (internal/effect
// Processor.Handle).
const HandlerIntents = "postgres_intents"

// HandledIntents are the intent types internal/effect executes.
var HandledIntents = []string{pipeline.PostgresUpsert, pipeline.PostgresUpdate}

// Contract returns what the projector's code needs from its contract.
func Contract() contract.Expect {
	return contract.Expect{
		Name:           "projector-effect",
		NodeType:       contract.NodeTypeEffect,
		Handlers:       []contract.Handler{{Name: HandlerIntents, Topics: 1, Only: []string{topics.PostgresIntents}}},
		Publishes:      []string{topics.EffectResults, topics.RegistrationAdmin},
		HandledIntents: HandledIntents,
		RetryPolicy:    true,
		CircuitBreaker: true,
	}
}
