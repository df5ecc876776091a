package snapshot

import (
	"bytes"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/intern"
)

// topKeys are the snapshot's top-level keys: the ModelRegistrationSnapshot's
// (pipeline.Snapshot), and the two of a record written before the reducer
// state moved into its header. The fast decoder leaves any other key, and
// so any spelling encoding/json would match case-insensitively, to the
// reference decoder.
var topKeys = map[string]bool{
	`"entity_id"`: true, `"domain"`: true, `"current_state"`: true, `"node_type"`: true, `"node_name"`: true,
	`"capabilities"`: true, `"last_state_change_at"`: true, `"snapshot_version"`: true,
	`"snapshot_created_at"`: true, `"schema_version"`: true, `"source_projection_sequence"`: true,
	`"consul"`: true, `"reducer_state"`: true,
}

var states = func() map[string]decide.State {
	m := map[string]decide.State{}
	for _, s := range decide.States {
		m[`"`+string(s)+`"`] = s
	}
	return m
}()

// decodeFast decodes a snapshot record as this package writes it (value and
// reducer state header) or wrote it before the header (state in the value);
// ok is false for anything else, including every invalid snapshot (the
// reference decoder then says what is wrong). It validates the JSON once and
// decodes the fields it needs from the raw bytes: the encoding/json decoder
// cost 41 µs and 37 allocations per node, most of a restart's restore.
func decodeFast(value, state []byte) (st *decide.NodeState, ok bool) {
	if !bytes.HasPrefix(value, []byte("{")) || pyjson.CheckSyntax(value) != nil {
		return nil, false
	}
	var entity uuid.UUID
	var current, caps, consul, rs []byte
	ok = true
	pyjson.EachMember(value, func(k, v []byte) bool {
		switch string(k) {
		case `"entity_id"`:
			entity, ok = parseUUID(v, entity)
		case `"current_state"`:
			current = v
		case `"capabilities"`:
			caps = v
		case `"consul"`:
			consul = v
		case `"reducer_state"`:
			rs = v
		default:
			ok = topKeys[string(k)]
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	if len(state) > 0 {
		// The current shape: the value is the bare model, the state is
		// in the header. A value with either legacy key as well is left
		// to the reference.
		if rs != nil || consul != nil || state[0] != '{' || pyjson.CheckSyntax(state) != nil {
			return nil, false
		}
		rs = state
	}
	if entity == uuid.Nil || rs == nil || rs[0] != '{' {
		return nil, false
	}
	// current_state: any non-empty string passes the reference's check.
	if len(current) < 3 || current[0] != '"' || bytes.IndexByte(current, '\\') >= 0 {
		return nil, false
	}
	s := &decide.NodeState{}
	if ok = decodeState(rs, s); !ok || s.NodeID != entity || !s.State.Valid() {
		return nil, false
	}
	if caps != nil && !isNull(caps) {
		s.Capabilities = intern.Bytes(caps)
	}
	if s.MCPTool == nil && consul != nil && bytes.Contains(consul, []byte("mcp-enabled")) {
		return nil, false // an old record whose MCP tool name is in its tags
	}
	return s, true
}

// decodeState decodes reducer_state into s.
func decodeState(obj []byte, s *decide.NodeState) (ok bool) {
	ok = true
	pyjson.EachMember(obj, func(k, v []byte) bool {
		switch string(k) {
		case `"node_id"`:
			s.NodeID, ok = parseUUID(v, s.NodeID)
		case `"state"`:
			if isNull(v) {
				break
			}
			s.State, ok = states[string(v)]
		case `"node_type"`:
			s.NodeType, ok = parseString(v, s.NodeType, true)
		case `"node_name"`:
			s.NodeName, ok = parseStringPtr(v)
		case `"node_version"`:
			s.NodeVersion, ok = parseString(v, s.NodeVersion, true)
		case `"endpoints"`:
			s.Endpoints, ok = parseEndpoints(v, s.Endpoints)
		case `"mcp_tool"`:
			s.MCPTool, ok = parseStringPtr(v)
		case `"introspection_extras"`:
			// An object, kept as it is (json.RawMessage); anything
			// else (null included) is left to the reference.
			if ok = v[0] == '{'; ok {
				s.Extras = intern.Bytes(v)
			}
		case `"declared"`:
			var d *decide.Declared
			if d, ok = decide.DeclaredFromJSON(v); ok {
				s.Declared = intern.Declared(d)
			}
		case `"registration_attempt_id"`:
			s.AttemptID, ok = parseUUID(v, s.AttemptID)
		case `"correlation_id"`:
			s.CorrelationID, ok = parseUUID(v, s.CorrelationID)
		case `"registered_at"`:
			s.RegisteredAt, ok = parseTime(v, s.RegisteredAt)
		case `"ack_deadline"`:
			s.AckDeadline, ok = parseTimePtr(v)
		case `"next_resend_at"`:
			s.NextResendAt, ok = parseTimePtr(v)
		case `"liveness_deadline"`:
			s.LivenessDeadline, ok = parseTimePtr(v)
		case `"last_heartbeat_at"`:
			s.LastHeartbeatAt, ok = parseTimePtr(v)
		case `"ack_timeout_emitted_at"`:
			s.AckTimeoutEmittedAt, ok = parseTimePtr(v)
		case `"liveness_timeout_emitted_at"`:
			s.LivenessTimeoutEmittedAt, ok = parseTimePtr(v)
		case `"last_state_change_at"`:
			s.LastStateChangeAt, ok = parseTime(v, s.LastStateChangeAt)
		case `"last_introspection_at"`:
			// Absent from records written before it was kept: zero.
			s.LastIntrospectionAt, ok = parseTime(v, s.LastIntrospectionAt)
		case `"sequence"`:
			if isNull(v) {
				break
			}
			s.Sequence, ok = parseInt(v)
		case `"capabilities"`, `"consul"`, `"description"`:
			// Written before reducer_state left them out; the record's
			// top level has the capabilities, the rest is derived.
		default:
			ok = false
		}
		return ok
	})
	return ok
}

func isNull(v []byte) bool { return string(v) == "null" }

// parseUUID decodes a UUID string as encoding/json does (UnmarshalText);
// null keeps old.
func parseUUID(v []byte, old uuid.UUID) (uuid.UUID, bool) {
	if isNull(v) {
		return old, true
	}
	in, ok := pyjson.PlainString(v)
	if !ok {
		return old, false
	}
	var id uuid.UUID
	if id.UnmarshalText(in) != nil {
		return old, false
	}
	return id, true
}

func parseString(v []byte, old string, shared bool) (string, bool) {
	if isNull(v) {
		return old, true
	}
	in, ok := pyjson.PlainString(v)
	if !ok {
		return old, false
	}
	if shared {
		return intern.StringBytes(in), true
	}
	return string(in), true
}

func parseStringPtr(v []byte) (*string, bool) {
	if isNull(v) {
		return nil, true
	}
	s, ok := parseString(v, "", false)
	if !ok {
		return nil, false
	}
	return &s, true
}

// parseTime decodes a time as encoding/json does (time.Time.UnmarshalJSON);
// null keeps old.
func parseTime(v []byte, old time.Time) (time.Time, bool) {
	if isNull(v) {
		return old, true
	}
	if _, ok := pyjson.PlainString(v); !ok {
		return old, false
	}
	var t time.Time
	if t.UnmarshalJSON(v) != nil {
		return old, false
	}
	return t, true
}

func parseTimePtr(v []byte) (*time.Time, bool) {
	if isNull(v) {
		return nil, true
	}
	t, ok := parseTime(v, time.Time{})
	if !ok {
		return nil, false
	}
	return &t, true
}

// parseInt decodes an integer as encoding/json does into an int64: digits
// only (no fraction or exponent), in range.
func parseInt(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// parseEndpoints decodes an object of strings; null keeps old. A repeated
// name goes to the reference decoder (a map keeps its last value).
func parseEndpoints(v []byte, old decide.Endpoints) (decide.Endpoints, bool) {
	if isNull(v) {
		return old, true
	}
	if v[0] != '{' {
		return old, false
	}
	e := decide.Endpoints{}
	ok := true
	pyjson.EachMember(v, func(k, u []byte) bool {
		name, okName := pyjson.PlainString(k)
		url, okURL := pyjson.PlainString(u)
		if ok = okName && okURL; ok {
			e = append(e, decide.Endpoint{Name: intern.StringBytes(name), URL: string(url)})
		}
		return ok
	})
	if !ok {
		return old, false
	}
	slices.SortFunc(e, func(a, b decide.Endpoint) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for i := 1; i < len(e); i++ {
		if e[i].Name == e[i-1].Name {
			return old, false
		}
	}
	return slices.Clip(e), true
}
