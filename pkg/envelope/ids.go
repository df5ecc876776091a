package envelope

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/google/uuid"
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
// "onex".
func EventTypeFromTopic(topic string) string {
	parts := strings.Split(topic, ".")
	if len(parts) < 5 || parts[0] != "onex" {
		return ""
	}
	return parts[2] + "." + parts[3]
}

// PeekCorrelationID makes a cheap, best-effort read of the top-level
// "correlation_id" of a JSON object (an envelope, a bare runtime tick, a raw
// request dict) for logging and dead-lettering when a full decode fails. It
// scans top-level members only, stops at the first syntax error (so a
// truncated value still yields an id that appeared before the damage), and
// returns the last correlation_id seen whose value is a string parseable as
// a UUID. ok is false when there is none.
func PeekCorrelationID(value []byte) (id uuid.UUID, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return uuid.Nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		if key != "correlation_id" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		if u, err := uuid.Parse(s); err == nil {
			id, ok = u, true
		}
	}
	return id, ok
}
