package decide

import "github.com/omninode/onex-fleet/pkg/consulservice"

// The tests' oracles: the declared FSM and the spec's Consul derivation,
// stated independently of the decision code they check.

// Allowed reports whether the decision code may move a node from -> to on
// trigger: a change listed in Transitions, or none.
func Allowed(from State, trig Trigger, to State) bool {
	if from == to {
		return true // a decision that keeps the state is not a transition
	}
	for _, t := range Transitions {
		if t.From == from && t.Trigger == trig && t.To == to {
			return true
		}
	}
	return false
}

// ConsulRegistrationFor derives the Consul service of a node from its
// introspection (spec 4.8).
func ConsulRegistrationFor(in Introspection) *ConsulRegistration {
	return consulservice.Derive(in.NodeID, in.NodeType, EndpointsOf(in.Endpoints), MCPToolOf(in))
}
