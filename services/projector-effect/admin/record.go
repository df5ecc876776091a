// Package admin publishes the registry's operator commands (pkg/operator):
// the gRPC AdminService the projector serves next to its read API, and the
// record both it and `onexctl nodes deregister|evict` put on
// topics.RegistrationAdmin, so the two cannot drift apart.
//
// Publishing is all either does: the orchestrator validates a command and
// hands it to the reducer, which decides it in order with the node's own
// messages. A published command has been acknowledged by the broker (acks
// all), nothing more.
package admin

import (
	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/operator"
)

// EvictKey is the record key of an evict, which is about no one node. A
// fixed key keeps every evict on one partition, in the order operators sent
// them (the orchestrator fans each out to every reducer partition).
const EvictKey = "evict"

// Key returns the record key of c: the node id of a deregister, EvictKey
// for an evict.
func Key(c *operator.Command) string {
	if k := c.Key(); k != "" {
		return k
	}
	return EvictKey
}

// Record returns c as the record to publish on topic: the ONEX envelope of
// operator.Encode (envelope id = command id, correlation id corr, a new one
// when Nil) with the bus headers the fleet writes (source = the bus
// environment). It validates c first (operator.Command.Validate); its
// error names the field at fault.
func Record(topic, source string, c *operator.Command, corr uuid.UUID) (*sarama.ProducerMessage, uuid.UUID, error) {
	if corr == uuid.Nil {
		corr = uuid.New()
	}
	value, err := operator.Encode(c, corr)
	if err != nil {
		return nil, uuid.Nil, err // operator's errors name the command and field
	}
	h := envelope.NewHeaders(topic, source)
	h.CorrelationID, h.MessageID = corr, c.CommandID
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(Key(c)), Value: sarama.ByteEncoder(value)}
	msg.Headers = append(msg.Headers, h.Records()...)
	return msg, corr, nil
}
