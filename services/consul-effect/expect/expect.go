// Package expect is the consul effect's side of its contract
// (contracts/consul-effect/contract.yaml): its handlers, the topics the code
// uses, the intent types it executes and the error-handling sections it
// reads. pkg/contract checks the contract against it when the consul effect
// starts and in `onexctl contracts validate`, so the file cannot drift from
// the code.
package expect

import (
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Service is the consul effect's directory under the contracts directory.
const Service = "consul-effect"

// Handler names of handler_routing.
const (
	// HandlerIntents serves the consul intents topic (internal/effect
	// Handler.Handle).
	HandlerIntents = "consul_intents"
	// HandlerSnapshots feeds the anti-entropy view from the registration
	// snapshots (internal/antientropy View).
	HandlerSnapshots = "snapshot_view"
)

// HandledIntents are the intent types internal/effect executes.
var HandledIntents = []string{pipeline.ConsulRegister, pipeline.ConsulDeregister}

// Contract returns what the consul effect's code needs from its contract.
func Contract() contract.Expect {
	return contract.Expect{
		Name:     "consul-effect",
		NodeType: contract.NodeTypeEffect,
		Handlers: []contract.Handler{
			{Name: HandlerIntents, Topics: 1, Only: []string{topics.ConsulIntents}},
			{Name: HandlerSnapshots, Topics: 1, Only: []string{topics.RegistrationSnapshots}},
		},
		Publishes:      []string{topics.EffectResults},
		HandledIntents: HandledIntents,
		RetryPolicy:    true,
		CircuitBreaker: true,
	}
}
