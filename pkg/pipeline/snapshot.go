package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Snapshot is the value of a record on the compacted registration snapshot
// topic, keyed by the node id: exactly the Python ModelRegistrationSnapshot
// (spec 2.10; extra="forbid"), its fields in the model's order, so a Python
// consumer validates it with ModelRegistrationSnapshot.model_validate_json.
//
// What only the fleet needs travels in headers of the same record, so
// compaction keeps it with the value: HeaderReducerState holds the reducer's
// state for the node (opaque to every other reader), from which the reducer
// restores on start and rebalance and from which the consul effect derives
// the node's Consul service. Records written before the state moved into the
// header carry it, and the Consul derivation, in two extra keys of the value
// ("reducer_state", "consul"); DecodeSnapshot ignores them and the reducer's
// decoder (services/reducer/snapshot) still restores from them.
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
}

// HeaderReducerState is the header of a snapshot record that carries the
// reducer's state for the node: the JSON object of services/reducer/decide
// NodeState (UTF-8, as every header a Python consumer decodes must be). The
// fleet's own headers are named x-onex-* (like pkg/dlq's
// x-onex-dlq-value-truncated); Python consumers ignore headers they do not
// know.
const HeaderReducerState = "x-onex-reducer-state"

// RestoreMarkerPrefix starts the key of the tombstones the reducer commits
// on its snapshot topic to find where a partition's restore ends
// (services/reducer, restore): they name no node, and a reader of the topic
// skips them rather than reporting a bad record.
const RestoreMarkerPrefix = "__restore_marker__."

// IsRestoreMarker reports whether a snapshot record's key is a reducer
// restore marker's.
func IsRestoreMarker(key []byte) bool {
	return len(key) >= len(RestoreMarkerPrefix) && string(key[:len(RestoreMarkerPrefix)]) == RestoreMarkerPrefix
}

// SnapshotState returns the value of a consumed snapshot record's
// HeaderReducerState header (the last one, if repeated), nil when it has
// none.
func SnapshotState(headers []*sarama.RecordHeader) []byte {
	var v []byte
	for _, h := range headers {
		if h != nil && string(h.Key) == HeaderReducerState {
			v = h.Value
		}
	}
	return v
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

// decodeSnapshotFast decodes a snapshot as the reducer writes it (and as it
// wrote it before, with the two extra keys Snapshot does not have): every
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
		case 11, 12:
			// "consul" and "reducer_state" of a record written before they
			// moved out of the value: not Snapshot fields, so encoding/json
			// ignores them too.
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
