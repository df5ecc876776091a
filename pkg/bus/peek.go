package bus

import (
	"bytes"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// peekCorrelationID returns what envelope.PeekCorrelationID returns for
// value — the last top-level "correlation_id" whose value is a string
// uuid.Parse accepts — at a fraction of its cost: every consumed record
// passes here, and the token-by-token decoder of the reference costs more
// than routing the record. A body that is not valid JSON takes the
// reference path, so the two agree on every input (FuzzPeekCorrelationID).
func peekCorrelationID(value []byte) (uuid.UUID, bool) {
	if !json.Valid(value) {
		return envelope.PeekCorrelationID(value)
	}
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return uuid.Nil, false
	}
	var id uuid.UUID
	ok := false
	i = skipSpace(value, i+1)
	for i < len(value) && value[i] == '"' {
		keyEnd := skipString(value, i)
		key := value[i:keyEnd]
		i = skipSpace(value, keyEnd)
		i = skipSpace(value, i+1) // past ':'
		valStart := i
		i = skipValue(value, i)
		if value[valStart] == '"' && stringIs(key, "correlation_id") {
			if s, good := unquote(value[valStart:i]); good {
				if u, err := uuid.Parse(s); err == nil {
					id, ok = u, true
				}
			}
		}
		i = skipSpace(value, i)
		if i < len(value) && value[i] == ',' {
			i = skipSpace(value, i+1)
			continue
		}
		break
	}
	return id, ok
}

// The helpers below assume valid JSON (checked by the caller).

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// unquote decodes a JSON string literal (quotes included).
func unquote(lit []byte) (string, bool) {
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]), true
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", false
	}
	return s, true
}

// stringIs reports whether the JSON string literal lit decodes to want.
func stringIs(lit []byte, want string) bool {
	if bytes.IndexByte(lit, '\\') < 0 {
		return len(lit) == len(want)+2 && string(lit[1:len(lit)-1]) == want
	}
	s, ok := unquote(lit)
	return ok && s == want
}
