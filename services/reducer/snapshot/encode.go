package snapshot

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// Encode returns st's snapshot record created at createdAt: as value the
// bytes json.Marshal(Build(st, createdAt)) gives, as reducer state the bytes
// json.Marshal(st) gives (EncodeState), both written directly, into one
// buffer. The reducer writes one snapshot per node it touches, one per
// heartbeat, and the encoding/json passes were a seventh of its CPU in make
// bench. TestEncodeMatchesBuild and FuzzEncodeMatchesBuild hold the two to
// the same bytes; a state the direct writer is not sure of (declared
// capabilities encoding/json would rewrite, a year outside 0–9999) takes
// the Build path.
func Encode(st *decide.NodeState, createdAt time.Time) (Record, error) {
	if b, ok := appendSnapshot(make([]byte, 0, 1536), st, createdAt); ok {
		n := len(b)
		if b, ok = appendState(b, st); ok {
			return Record{Value: b[:n:n], State: b[n:]}, nil
		}
	}
	return encodeBuilt(st, createdAt)
}

// EncodeState returns the reducer state header of st's snapshot record (see
// Encode), for a writer that builds the value itself (Build).
func EncodeState(st *decide.NodeState) ([]byte, error) {
	if b, ok := appendState(make([]byte, 0, 768), st); ok {
		return b, nil
	}
	return marshalState(st)
}

func marshalState(st *decide.NodeState) ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("snapshot: encode reducer state: %w", err)
	}
	return b, nil
}

// encodeBuilt is the reference encoding.
func encodeBuilt(st *decide.NodeState, createdAt time.Time) (Record, error) {
	s, err := Build(st, createdAt)
	if err != nil {
		return Record{}, err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return Record{}, fmt.Errorf("snapshot: encode: %w", err)
	}
	rs, err := marshalState(st)
	if err != nil {
		return Record{}, err
	}
	return Record{Value: v, State: rs}, nil
}

// appendSnapshot writes json.Marshal(Build(st, createdAt)): the
// ModelRegistrationSnapshot's fields in its order, nothing else.
func appendSnapshot(b []byte, st *decide.NodeState, createdAt time.Time) ([]byte, bool) {
	if !rawKeeps(st.Capabilities) {
		return nil, false
	}
	b = append(b, `{"entity_id":`...)
	b = appendUUID(b, st.NodeID)
	b = append(b, `,"domain":`...)
	b = appendString(b, decide.Domain)
	b = append(b, `,"current_state":`...)
	b = appendString(b, string(st.State))
	b = append(b, `,"node_type":`...)
	b = appendString(b, st.NodeType)
	b = append(b, `,"node_name":`...)
	b = appendStringPtr(b, modelNodeName(st.NodeName))
	b = append(b, `,"capabilities":`...)
	if st.Capabilities == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, st.Capabilities...)
	}
	b = append(b, `,"last_state_change_at":`...)
	b = appendEnvelopeTime(b, st.LastStateChangeAt)
	b = append(b, `,"snapshot_version":`...)
	b = strconv.AppendInt(b, max(st.Sequence, 1), 10)
	b = append(b, `,"snapshot_created_at":`...)
	b = appendEnvelopeTime(b, createdAt)
	b = append(b, `,"schema_version":"`+SchemaVersion+`","source_projection_sequence":`...)
	if st.Sequence < 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, st.Sequence, 10)
	}
	return append(b, '}'), true
}

// appendState writes json.Marshal(st).
func appendState(b []byte, st *decide.NodeState) ([]byte, bool) {
	b = append(b, `{"node_id":`...)
	b = appendUUID(b, st.NodeID)
	b = append(b, `,"state":`...)
	b = appendString(b, string(st.State))
	b = append(b, `,"node_type":`...)
	b = appendString(b, st.NodeType)
	b = append(b, `,"node_name":`...)
	b = appendStringPtr(b, st.NodeName)
	b = append(b, `,"node_version":`...)
	b = appendString(b, st.NodeVersion)
	if len(st.Endpoints) > 0 {
		b = append(b, `,"endpoints":{`...)
		for i, e := range st.Endpoints {
			if i > 0 {
				// Endpoints are sorted and unique by construction; a
				// state built otherwise goes to encoding/json, which
				// writes a map.
				if e.Name <= st.Endpoints[i-1].Name {
					return nil, false
				}
				b = append(b, ',')
			}
			b = appendString(b, e.Name)
			b = append(b, ':')
			b = appendString(b, e.URL)
		}
		b = append(b, '}')
	}
	if st.MCPTool != nil {
		b = append(b, `,"mcp_tool":`...)
		b = appendString(b, *st.MCPTool)
	}
	if len(st.Extras) > 0 { // omitempty: a node without extras writes none
		if !rawKeeps(st.Extras) {
			return nil, false
		}
		b = append(b, `,"introspection_extras":`...)
		b = append(b, st.Extras...)
	}
	if st.Declared != nil { // omitempty: a node that declares nothing writes none
		b = append(b, `,"declared":`...)
		b = append(b, st.Declared.JSON()...)
	}
	b = append(b, `,"registration_attempt_id":`...)
	b = appendUUID(b, st.AttemptID)
	b = append(b, `,"correlation_id":`...)
	b = appendUUID(b, st.CorrelationID)
	var ok bool
	for _, f := range []struct {
		key       string
		t         *time.Time
		omitEmpty bool
	}{
		{`,"registered_at":`, &st.RegisteredAt, false}, {`,"ack_deadline":`, st.AckDeadline, false},
		{`,"next_resend_at":`, st.NextResendAt, true}, {`,"liveness_deadline":`, st.LivenessDeadline, false},
		{`,"last_heartbeat_at":`, st.LastHeartbeatAt, false}, {`,"ack_timeout_emitted_at":`, st.AckTimeoutEmittedAt, false},
		{`,"liveness_timeout_emitted_at":`, st.LivenessTimeoutEmittedAt, false}, {`,"last_state_change_at":`, &st.LastStateChangeAt, false},
	} {
		if f.t == nil && f.omitEmpty {
			continue
		}
		b = append(b, f.key...)
		if f.t == nil {
			b = append(b, "null"...)
			continue
		}
		if b, ok = appendTime(b, *f.t); !ok {
			return nil, false
		}
	}
	if !st.LastIntrospectionAt.IsZero() { // omitzero: records of nodes without it keep their bytes
		b = append(b, `,"last_introspection_at":`...)
		if b, ok = appendTime(b, st.LastIntrospectionAt); !ok {
			return nil, false
		}
	}
	b = append(b, `,"sequence":`...)
	b = strconv.AppendInt(b, st.Sequence, 10)
	return append(b, '}'), true
}

// appendUUID writes id's canonical form (what UUID.String returns) without
// allocating it.
func appendUUID(b []byte, id uuid.UUID) []byte {
	b = append(b, '"')
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return append(b, '"')
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendTime writes a time.Time as its MarshalJSON does (RFC 3339 with
// nanoseconds), which refuses years outside 0–9999.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendEnvelopeTime writes pipeline.T(t) as its MarshalJSON does.
func appendEnvelopeTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = append(b, envelope.FormatTime(pipeline.T(t).Time)...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as encoding/json does by default: HTML-sensitive
// characters (<, >, &) and U+2028/U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// rawKeeps reports whether encoding/json would write the raw JSON raw as it
// is: compact, no HTML-sensitive characters, nothing outside ASCII (where it
// would escape U+2028 and U+2029), valid. The reducer keeps declared
// capabilities compacted, so this holds for what it writes.
func rawKeeps(raw []byte) bool {
	if raw == nil {
		return true
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= utf8.RuneSelf, c == '<', c == '>', c == '&', c < 0x20:
			return false
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == ' ':
			return false
		}
	}
	return pyjson.Valid(raw)
}
