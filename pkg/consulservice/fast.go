package consulservice

import (
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// fromSnapshotFast is FromSnapshot for the record the reducer writes now
// (its state in the header), without encoding/json: the consul effect reads
// one per heartbeat of every node, and the two encoding/json passes were
// most of a record's cost. It validates each document once and walks the
// members it reads; it takes no record it is not sure of (a legacy layout,
// an escaped string, a key encoding/json would match case-insensitively to
// one it reads, a member it reads given twice, anything FromSnapshot
// refuses) and leaves those to fromSnapshotReference, so the two cannot
// differ: FuzzFastMatchesReference holds them to it.
func fromSnapshotFast(value, state []byte) (*reducerState, bool) {
	if len(state) == 0 || value[0] != '{' || state[0] != '{' || !pyjson.Valid(value) || !pyjson.Valid(state) {
		return nil, false
	}
	var entity uuid.UUID
	var current string
	ok := eachRead(value, valueKeys, func(i int, v []byte) bool {
		switch i {
		case 0:
			return fastUUID(v, &entity)
		case 1:
			return fastString(v, &current)
		}
		return false // consul, reducer_state: a legacy layout
	})
	if !ok || entity == uuid.Nil || current == "" {
		return nil, false
	}
	st := &reducerState{}
	ok = eachRead(state, stateKeys, func(i int, v []byte) bool {
		switch i {
		case 0:
			return fastUUID(v, &st.NodeID)
		case 1:
			return fastString(v, (*string)(&st.State))
		case 2:
			return fastString(v, &st.NodeType)
		case 3:
			return fastEndpoints(v, &st.Endpoints)
		case 4:
			if string(v) == "null" {
				st.MCPTool = nil
				return true
			}
			s, ok := pyjson.PlainString(v)
			st.MCPTool = ptr(string(s))
			return ok
		case 5:
			return fastUUID(v, &st.CorrelationID)
		}
		return false
	})
	if !ok || st.NodeID != entity || !registration.State(st.State).Valid() {
		return nil, false
	}
	return st, true
}

// The members fromSnapshotFast reads, by index, in the value and in the
// reducer state.
var (
	valueKeys = []string{"entity_id", "current_state", "consul", "reducer_state"}
	stateKeys = []string{"node_id", "state", "node_type", "endpoints", "mcp_tool", "correlation_id"}
)

// eachRead walks the members of obj (a document pyjson.Valid accepted) and
// calls fn with the index in keys of each member named exactly as one of
// keys; other members are skipped. It reports false, and stops, at a key
// that is not plain ASCII or that matches one of keys only ignoring case
// (encoding/json would take it for that one), at one of keys seen before,
// and when fn returns false.
func eachRead(obj []byte, keys []string, fn func(i int, v []byte) bool) bool {
	var seen uint64
	ok := true
	pyjson.EachMember(obj, func(q, v []byte) bool {
		k, plain := pyjson.PlainString(q)
		if !plain || !ascii(k) {
			ok = false
			return false
		}
		for i, key := range keys {
			if string(k) == key {
				if seen&(1<<i) != 0 {
					ok = false
					return false
				}
				seen |= 1 << i
				ok = fn(i, v)
				return ok
			}
			if strings.EqualFold(string(k), key) {
				ok = false
				return false
			}
		}
		return true
	})
	return ok
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// fastString decodes a plain JSON string into dst; null leaves dst as it
// is, as encoding/json does.
func fastString(v []byte, dst *string) bool {
	if string(v) == "null" {
		return true
	}
	in, ok := pyjson.PlainString(v)
	*dst = string(in)
	return ok
}

func fastUUID(v []byte, dst *uuid.UUID) bool {
	if string(v) == "null" {
		return true
	}
	in, ok := pyjson.PlainString(v)
	return ok && dst.UnmarshalText(in) == nil
}

// fastEndpoints decodes an object of plain strings (null: none).
func fastEndpoints(v []byte, dst *EndpointMap) bool {
	if string(v) == "null" {
		*dst = nil
		return true
	}
	if v[0] != '{' {
		return false
	}
	m := EndpointMap{}
	ok := true
	pyjson.EachMember(v, func(q, u []byte) bool {
		k, plain := pyjson.PlainString(q)
		url, isURL := pyjson.PlainString(u)
		if ok = plain && isURL; ok {
			m[string(k)] = string(url)
		}
		return ok
	})
	*dst = m
	return ok
}
