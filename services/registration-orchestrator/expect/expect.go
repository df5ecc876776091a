// Package expect is the registration orchestrator's side of its contract
// (contracts/registration-orchestrator/contract.yaml): the handler names
// internal/app wires to subscriptions, the topics the code uses, and the
// intent types it must be able to route. pkg/contract checks the contract
// against it when the orchestrator starts and in `onexctl contracts
// validate`, so the file cannot drift from the code.
package expect

import (
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Service is the orchestrator's directory under the contracts directory.
const Service = "registration-orchestrator"

// Name is the contract name, the Python orchestrator's (spec 10.4): the
// node-facing consumer group ids are derived from it.
const Name = "node_registration_orchestrator"

// Handler names of handler_routing, one per consuming component of
// internal/app.
const (
	HandlerIngress        = "ingress"             // internal/ingress: node messages -> reducer input
	HandlerIntentRouter   = "intent_router"       // internal/workflow: reducer intents -> effect commands
	HandlerResults        = "result_aggregator"   // internal/workflow: effect results -> registration results
	HandlerCatalogQuery   = "topic_catalog_query" // internal/catalog
	HandlerTickLeadership = "tick_leadership"     // internal/ticker
	// HandlerOperatorCommands: operator commands (deregister, evict) ->
	// reducer input (internal/ingress).
	HandlerOperatorCommands = "operator_commands"
)

// IngressTopics are the node-facing topics the ingress validator knows how to
// check; they are exactly the node messages the reducer decides on.
var IngressTopics = []string{topics.NodeIntrospection, topics.NodeRegistrationAcked, topics.NodeHeartbeat}

// OperatorTopics are the topics the operator command handler can decode.
var OperatorTopics = []string{topics.RegistrationAdmin}

// RoutedIntents are the intent types the reducer emits (the fleet's intent
// vocabulary, pkg/pipeline); each needs a route, or the orchestrator would
// dead-letter a whole class of intents.
var RoutedIntents = []string{pipeline.PostgresUpsert, pipeline.PostgresUpdate, pipeline.ConsulRegister, pipeline.ConsulDeregister}

// Contract returns what the orchestrator's code needs from its contract.
func Contract() contract.Expect {
	return contract.Expect{
		Name:     Name,
		NodeType: contract.NodeTypeOrchestrator,
		Handlers: []contract.Handler{
			{Name: HandlerIngress, Only: IngressTopics},
			{Name: HandlerIntentRouter, Topics: 1},
			{Name: HandlerResults, Topics: 1},
			{Name: HandlerCatalogQuery, Topics: 1},
			{Name: HandlerTickLeadership, Topics: 1},
			{Name: HandlerOperatorCommands, Topics: 1, Only: OperatorTopics},
		},
		// The aggregation state is read back on every assignment; the
		// node-topics table is followed by every replica for the catalog.
		// Neither goes through a handler.
		Subscribes: []string{topics.RegistrationAggregations, topics.NodeTopics},
		Publishes: []string{topics.ReducerInput, topics.RegistrationAggregations, topics.RuntimeTick, topics.RequestIntrospection,
			topics.TopicCatalogResponse, topics.TopicCatalogChanged},
		RoutedIntents:     RoutedIntents,
		ResultAggregation: true,
		RetryPolicy:       true,
	}
}
