package topics

import (
	"strings"

	"github.com/omninode/onex-fleet/pkg/topicns"
)

// OnNamespace returns the states of the topics on namespace ns, under their
// canonical names, so what a namespaced process reads from Describe lines up
// with the registry. With no namespace it returns states as they are.
func OnNamespace(ns topicns.Namespace, states []TopicState) []TopicState {
	if ns == topicns.None {
		return states
	}
	out := make([]TopicState, 0, len(states))
	for _, st := range states {
		if strings.HasPrefix(st.Name, ns.Prefix()) {
			st.Name = ns.Canonical(st.Name)
			out = append(out, st)
		}
	}
	return out
}
