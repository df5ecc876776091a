package registration

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// RequestIntrospection is the raw JSON object nodes react to on
// onex.cmd.platform.request-introspection.v1 (there is no Python class).
// Decoding is lenient like the Python node: every key is optional, and a
// key whose value has the wrong type or does not parse is treated as absent.
// Keys are read from the JSON top level only, so for an enveloped request
// the envelope's correlation_id is seen and payload.target_node_id is not
// (the request is then a broadcast), exactly as on a Python node.
type RequestIntrospection struct {
	// EventType is conventionally "REQUEST_INTROSPECTION". Beware: a
	// top-level event_type overrides routing on Python runtimes.
	EventType *string
	// CorrelationID is copied into the answering introspection; nil when
	// missing or not a UUID (the node then generates one).
	CorrelationID *uuid.UUID
	// Timestamp is informational; nil when missing or unparsable (a naive
	// value is read as UTC).
	Timestamp *envelope.Time
	// Reason is free text, e.g. "registry_startup".
	Reason *string
	// TargetNodeID is the node addressed, as sent; nil or "" addresses every
	// node. See AddressedTo.
	TargetNodeID *string
}

// DecodeRequestIntrospection reads a request-introspection value. An empty
// (or whitespace-only) value and any JSON value that is not an object yield
// an empty request (every node answers). Only malformed JSON is an error.
// Unknown keys are ignored.
func DecodeRequestIntrospection(value []byte) (*RequestIntrospection, error) {
	r := &RequestIntrospection{}
	if len(bytes.TrimSpace(value)) == 0 {
		return r, nil
	}
	if err := pyjson.CheckSyntax(value); err != nil {
		return nil, fmt.Errorf("RequestIntrospection: %w", err)
	}
	members, err := pyjson.ParseMembers(value)
	if err != nil {
		return r, nil // not an object: still a request
	}
	m := pyjson.Members(members)
	str := func(key string) *string {
		raw, ok := m.Get(key)
		if !ok {
			return nil
		}
		s, err := pyjson.String.Decode(raw)
		if err != nil {
			return nil
		}
		return &s
	}
	r.EventType = str("event_type")
	r.Reason = str("reason")
	r.TargetNodeID = str("target_node_id")
	if s := str("correlation_id"); s != nil {
		if u, err := uuid.Parse(*s); err == nil {
			r.CorrelationID = &u
		}
	}
	if s := str("timestamp"); s != nil {
		if t, err := envelope.ParseHeaderTime(*s); err == nil {
			r.Timestamp = &envelope.Time{Time: t}
		}
	}
	return r, nil
}

// AddressedTo reports whether the node nodeID should answer: true when
// TargetNodeID is nil or empty, or names nodeID (any UUID spelling); false
// otherwise, including for a TargetNodeID that is not a UUID.
func (r *RequestIntrospection) AddressedTo(nodeID uuid.UUID) bool {
	if r.TargetNodeID == nil || strings.TrimSpace(*r.TargetNodeID) == "" {
		return true
	}
	u, err := uuid.Parse(*r.TargetNodeID)
	return err == nil && u == nodeID
}

// MarshalJSON writes the set keys only (a raw dict, not a model): absent
// target_node_id means broadcast, so nil fields are omitted rather than
// written as null. Key order: event_type, correlation_id, timestamp, reason,
// target_node_id.
func (r RequestIntrospection) MarshalJSON() ([]byte, error) {
	var fields []pyjson.Field
	if r.EventType != nil {
		fields = append(fields, pyjson.Prop("event_type", r.EventType, pyjson.String))
	}
	if r.CorrelationID != nil {
		fields = append(fields, pyjson.Prop("correlation_id", r.CorrelationID, pyjson.UUID))
	}
	if r.Timestamp != nil {
		fields = append(fields, pyjson.Prop("timestamp", r.Timestamp, timeC))
	}
	if r.Reason != nil {
		fields = append(fields, pyjson.Prop("reason", r.Reason, pyjson.String))
	}
	if r.TargetNodeID != nil {
		fields = append(fields, pyjson.Prop("target_node_id", r.TargetNodeID, pyjson.String))
	}
	return pyjson.Marshal(pyjson.Spec{Fields: fields})
}
