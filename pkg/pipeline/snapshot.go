package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Snapshot is the value of a record on the compacted registration snapshot
// topic, keyed by the node id. It has every field of the Python
// ModelRegistrationSnapshot (spec 2.10), plus two the fleet needs:
//   - Consul: the node's Consul service as derived at registration (spec 4.8),
//     which the consul effect's anti-entropy compares with the catalog;
//   - ReducerState: the reducer's full state for the node, opaque to every
//     other reader, from which the reducer restores on start and rebalance.
//
// A tombstone (null value) removes the node.
type Snapshot struct {
	EntityID                 uuid.UUID       `json:"entity_id"`
	Domain                   string          `json:"domain"`
	CurrentState             string          `json:"current_state"`
	NodeType                 *string         `json:"node_type"`
	NodeName                 *string         `json:"node_name"`
	Capabilities             json.RawMessage `json:"capabilities"`
	LastStateChangeAt        envelope.Time   `json:"last_state_change_at"`
	SnapshotVersion          int64           `json:"snapshot_version"`
	SnapshotCreatedAt        envelope.Time   `json:"snapshot_created_at"`
	SchemaVersion            string          `json:"schema_version"`
	SourceProjectionSequence *int64          `json:"source_projection_sequence"`

	Consul       *ConsulRegisterPayload `json:"consul,omitempty"`
	ReducerState json.RawMessage        `json:"reducer_state,omitempty"`
}

// DecodeSnapshot decodes a snapshot record value. A nil or empty value is a
// tombstone and returns (nil, nil).
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	s, ok := decodeSnapshotFast(b)
	if !ok {
		s = &Snapshot{}
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	if s.EntityID == uuid.Nil {
		return nil, fmt.Errorf("snapshot: field %q: missing", "entity_id")
	}
	if s.CurrentState == "" {
		return nil, fmt.Errorf("snapshot: field %q: missing", "current_state")
	}
	return s, nil
}

// decodeSnapshotFast decodes a snapshot as the reducer writes it: every
// record on the snapshot topic reaches the consul effect's view, and
// encoding/json took a twentieth of the fleet's CPU per heartbeat there.
// It validates the record once, walks its members and decodes each field
// with the decoder encoding/json would call; it takes no record it is not
// sure of (a key it does not know, one given twice, an escaped string, a
// null time) and leaves those to encoding/json, so the two cannot differ:
// FuzzDecodeSnapshotFastMatchesEncodingJSON holds them to it.
func decodeSnapshotFast(b []byte) (*Snapshot, bool) {
	if b[0] != '{' || !pyjson.Valid(b) {
		return nil, false
	}
	s := &Snapshot{}
	ok := eachKnown(b, snapshotKeys, func(i int, v []byte) bool {
		ok := true
		switch i {
		case 0:
			ok = fastUUID(v, &s.EntityID)
		case 1:
			ok = fastString(v, &s.Domain)
		case 2:
			ok = fastString(v, &s.CurrentState)
		case 3:
			s.NodeType, ok = fastStringPtr(v)
		case 4:
			s.NodeName, ok = fastStringPtr(v)
		case 5:
			s.Capabilities = append(json.RawMessage(nil), v...)
		case 6:
			ok = fastTime(v, &s.LastStateChangeAt)
		case 7:
			ok = fastInt(v, &s.SnapshotVersion)
		case 8:
			ok = fastTime(v, &s.SnapshotCreatedAt)
		case 9:
			ok = fastString(v, &s.SchemaVersion)
		case 10:
			if string(v) != "null" {
				var n int64
				ok = fastInt(v, &n)
				s.SourceProjectionSequence = &n
			}
		case 11:
			if string(v) != "null" {
				s.Consul, ok = fastConsul(v)
			}
		case 12:
			s.ReducerState = append(json.RawMessage(nil), v...)
		}
		return ok
	})
	return s, ok
}

// eachKnown walks the members of obj (inside a document pyjson.Valid
// accepted) and calls fn with each member's index in keys and its value. It
// reports false, and stops, at a key keys does not hold, at a key seen
// before (encoding/json would merge a repeated object into the first one's
// value, which a fresh decode cannot reproduce) and when fn returns false.
func eachKnown(obj []byte, keys map[string]int, fn func(i int, v []byte) bool) bool {
	var seen uint64
	ok := true
	pyjson.EachMember(obj, func(k, v []byte) bool {
		i, known := keys[string(k)]
		if !known || seen&(1<<i) != 0 {
			ok = false
			return false
		}
		seen |= 1 << i
		ok = fn(i, v)
		return ok
	})
	return ok
}

var snapshotKeys = map[string]int{
	`"entity_id"`: 0, `"domain"`: 1, `"current_state"`: 2, `"node_type"`: 3, `"node_name"`: 4,
	`"capabilities"`: 5, `"last_state_change_at"`: 6, `"snapshot_version"`: 7, `"snapshot_created_at"`: 8,
	`"schema_version"`: 9, `"source_projection_sequence"`: 10, `"consul"`: 11, `"reducer_state"`: 12,
}

func fastString(v []byte, dst *string) bool {
	if string(v) == "null" {
		return true
	}
	in, ok := pyjson.PlainString(v)
	*dst = string(in)
	return ok
}

func fastStringPtr(v []byte) (*string, bool) {
	if string(v) == "null" {
		return nil, true
	}
	in, ok := pyjson.PlainString(v)
	s := string(in)
	return &s, ok
}

func fastUUID(v []byte, dst *uuid.UUID) bool {
	if string(v) == "null" {
		return true
	}
	in, ok := pyjson.PlainString(v)
	return ok && dst.UnmarshalText(in) == nil
}

func fastTime(v []byte, dst *envelope.Time) bool {
	return v[0] == '"' && dst.UnmarshalJSON(v) == nil
}

func fastInt(v []byte, dst *int64) bool {
	if string(v) == "null" {
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	*dst = n
	return err == nil
}

var consulKeys = map[string]int{
	`"intent_type"`: 0, `"correlation_id"`: 1, `"node_id"`: 2, `"service_id"`: 3, `"service_name"`: 4,
	`"tags"`: 5, `"address"`: 6, `"port"`: 7, `"health_check"`: 8, `"event_bus_config"`: 9,
}

// fastConsul decodes a snapshot's consul object on the same terms as
// decodeSnapshotFast.
func fastConsul(v []byte) (*ConsulRegisterPayload, bool) {
	if v[0] != '{' {
		return nil, false
	}
	c := &ConsulRegisterPayload{}
	ok := eachKnown(v, consulKeys, func(i int, v []byte) bool {
		ok := true
		switch i {
		case 0:
			ok = fastString(v, &c.IntentType)
		case 1:
			ok = fastUUID(v, &c.CorrelationID)
		case 2:
			c.NodeID, ok = fastStringPtr(v)
		case 3:
			ok = fastString(v, &c.ServiceID)
		case 4:
			ok = fastString(v, &c.ServiceName)
		case 5:
			c.Tags, ok = fastStrings(v)
		case 6:
			c.Address, ok = fastStringPtr(v)
		case 7:
			if string(v) != "null" {
				var n int64
				ok = fastInt(v, &n)
				p := int(n)
				c.Port = &p
			}
		case 8:
			if string(v) != "null" {
				c.HealthCheck, ok = fastHealthCheck(v)
			}
		case 9:
			c.EventBusConfig = append(json.RawMessage(nil), v...)
		}
		return ok
	})
	return c, ok
}

func fastStrings(v []byte) ([]string, bool) {
	if string(v) == "null" {
		return nil, true
	}
	if v[0] != '[' {
		return nil, false
	}
	out := []string{}
	ok := true
	pyjson.EachElement(v, func(e []byte) bool {
		in, plain := pyjson.PlainString(e)
		if ok = plain; ok {
			out = append(out, string(in))
		}
		return ok
	})
	return out, ok
}

var healthKeys = map[string]int{`"http"`: 0, `"interval"`: 1, `"timeout"`: 2, `"deregister_critical_service_after"`: 3}

func fastHealthCheck(v []byte) (*HealthCheck, bool) {
	if v[0] != '{' {
		return nil, false
	}
	h := &HealthCheck{}
	dst := [4]*string{&h.HTTP, &h.Interval, &h.Timeout, &h.DeregisterCriticalServiceAfter}
	ok := eachKnown(v, healthKeys, func(i int, v []byte) bool { return fastString(v, dst[i]) })
	return h, ok
}
