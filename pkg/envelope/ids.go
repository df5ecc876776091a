package envelope

import (
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/topicns"
)

// DeterministicID returns the envelope_id the Python runtime gives the
// index-th output event of a handler (DispatchResultApplier):
// UUIDv5(namespace = correlationID, name = "<payloadClass>:<index>"), index
// counting from 0. payloadClass is the Python model class name, e.g.
// "ModelNodeBecameActive". The same inputs always yield the same id, so a
// redelivered input produces envelopes that consumers can deduplicate.
func DeterministicID(correlationID uuid.UUID, payloadClass string, index int) uuid.UUID {
	return uuid.NewSHA1(correlationID, []byte(payloadClass+":"+strconv.Itoa(index)))
}

// EventTypeFromTopic derives the envelope event_type from an ONEX topic name
// as the Python runtime does: "onex.evt.platform.node-became-active.v1" →
// "platform.node-became-active" (segments 3 and 4). It returns "" when the
// topic has fewer than five dot-separated segments or does not start with
// "onex". A namespaced name (KAFKA_TOPIC_NAMESPACE) gives the event type of
// its canonical name: the event type is the same on every namespace.
func EventTypeFromTopic(topic string) string {
	parts := strings.Split(topicns.Strip(topic), ".")
	if len(parts) < 5 || parts[0] != "onex" {
		return ""
	}
	return parts[2] + "." + parts[3]
}
