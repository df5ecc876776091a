// Package operator defines the operator commands of the registry: deregister
// one node, or evict every node of a state that has been in it too long.
// onexctl and the projector's admin gRPC service publish them on
// topics.RegistrationAdmin as ONEX envelopes; the orchestrator validates them
// strictly (Decode) and hands them to the reducer through its input topic,
// which decides them like any other input: sequenced with the node's own
// messages, exactly once, visible in `onexctl reducer replay`.
//
// Guarantees and limits:
//   - A deregister takes a registered or registering node (accepted,
//     awaiting_ack, ack_received, active) out of Consul and moves it to
//     liveness_expired, as a shutdown does; a node in any other state is
//     not registered and the command changes nothing. A node that is still
//     alive registers again with its next introspection: deregistering does
//     not ban a node.
//   - An evict deregisters every node whose state is State and whose last
//     state change is older than OlderThan at the time the reducer decides
//     it. Only the registered states above can be evicted; nodes in a
//     terminal state are already out of Consul.
//   - Every command carries who asked (RequestedBy) and why (Reason); both
//     are logged where the command is accepted and where it is decided.
//
// Evolution: fields are only added, each optional for older readers.
package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Kind is the command's verb.
type Kind string

// The commands.
const (
	Deregister Kind = "deregister"
	Evict      Kind = "evict"
)

// EvictableStates are the states an evict may name: those in which a node is
// registered, or being registered, in Consul.
var EvictableStates = []string{"accepted", "awaiting_ack", "ack_received", "active"}

// Limits of the free-text fields, in characters.
const (
	MaxReason      = 1024
	MaxRequestedBy = 256
)

// Command is one operator command, the payload of its envelope.
type Command struct {
	CommandID uuid.UUID `json:"command_id"`
	Command   Kind      `json:"command"`
	// NodeID is the node a deregister is about (nil for an evict).
	NodeID *uuid.UUID `json:"node_id,omitempty"`
	// State and OlderThanSeconds select the nodes an evict deregisters
	// (nil for a deregister).
	State            *string `json:"state,omitempty"`
	OlderThanSeconds *int64  `json:"older_than_seconds,omitempty"`
	// Reason is why (may be empty); RequestedBy who asked (required).
	Reason      string        `json:"reason"`
	RequestedBy string        `json:"requested_by"`
	RequestedAt envelope.Time `json:"requested_at"`
}

// OlderThan is the evict's age threshold (0 for a deregister).
func (c *Command) OlderThan() time.Duration {
	if c.OlderThanSeconds == nil {
		return 0
	}
	return time.Duration(*c.OlderThanSeconds) * time.Second
}

// Key is the command's record key: the node id of a deregister, empty for an
// evict (which the orchestrator sends to every reducer partition).
func (c *Command) Key() string {
	if c.NodeID != nil {
		return c.NodeID.String()
	}
	return ""
}

// Validate reports the first problem of c, naming the field.
func (c *Command) Validate() error {
	if c.CommandID == uuid.Nil {
		return fieldErr("command_id", "missing")
	}
	switch c.Command {
	case Deregister:
		if c.NodeID == nil || *c.NodeID == uuid.Nil {
			return fieldErr("node_id", "required for deregister")
		}
		if c.State != nil || c.OlderThanSeconds != nil {
			return fieldErr("state", "not allowed for deregister")
		}
	case Evict:
		if c.NodeID != nil {
			return fieldErr("node_id", "not allowed for evict")
		}
		if c.State == nil || !slices.Contains(EvictableStates, *c.State) {
			return fieldErr("state", fmt.Sprintf("must be one of %v", EvictableStates))
		}
		if c.OlderThanSeconds == nil || *c.OlderThanSeconds < 0 {
			return fieldErr("older_than_seconds", "required, at least 0")
		}
	default:
		return fieldErr("command", fmt.Sprintf("%q is not one of deregister, evict", c.Command))
	}
	if !utf8.ValidString(c.Reason) || utf8.RuneCountInString(c.Reason) > MaxReason {
		return fieldErr("reason", fmt.Sprintf("at most %d characters of UTF-8", MaxReason))
	}
	if c.RequestedBy == "" || !utf8.ValidString(c.RequestedBy) || utf8.RuneCountInString(c.RequestedBy) > MaxRequestedBy {
		return fieldErr("requested_by", fmt.Sprintf("required, at most %d characters of UTF-8", MaxRequestedBy))
	}
	if c.RequestedAt.IsZero() {
		return fieldErr("requested_at", "missing")
	}
	return nil
}

func fieldErr(field, msg string) error {
	return fmt.Errorf("operator command: field %q: %s", field, msg)
}

// Encode returns the command as the value of a record on
// topics.RegistrationAdmin: an ONEX envelope whose correlation id is corr
// (a new one when Nil) and whose envelope id is the command id.
func Encode(c *Command, corr uuid.UUID) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if corr == uuid.Nil {
		corr = uuid.New()
	}
	env, err := envelope.New(c,
		envelope.WithEnvelopeID(c.CommandID),
		envelope.WithCorrelationID(corr),
		envelope.WithTimestamp(c.RequestedAt.Time),
		envelope.WithEventType(envelope.EventTypeFromTopic(topics.RegistrationAdmin)),
		envelope.WithTag("message_category", "command"),
	)
	if err != nil {
		return nil, fmt.Errorf("operator command: %w", err)
	}
	return env.Encode()
}

// Decode decodes and validates a record value of topics.RegistrationAdmin
// strictly: the envelope as envelope.Decode takes it, the payload with no
// unknown field. Every error names what is wrong.
func Decode(value []byte) (*envelope.Envelope, *Command, error) {
	env, err := envelope.Decode(value)
	if err != nil {
		return nil, nil, fmt.Errorf("operator command envelope: %w", err)
	}
	c, err := DecodePayload(env.Payload)
	if err != nil {
		return nil, nil, err
	}
	return env, c, nil
}

// DecodePayload decodes and validates a command payload strictly.
func DecodePayload(payload []byte) (*Command, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var c Command
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("operator command: %w", err)
	}
	if dec.More() {
		return nil, errors.New("operator command: trailing data after the payload")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
