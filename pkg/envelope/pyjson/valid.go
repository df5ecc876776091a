package pyjson

// maxDepth is encoding/json's nesting limit: a document nested deeper is
// invalid for it, so it is for Valid too.
const maxDepth = 10000

// Valid reports whether data is one well-formed JSON value (surrounding
// whitespace allowed), exactly as encoding/json.Valid does — the same
// grammar, bytes that are not UTF-8 accepted inside strings, the same
// nesting limit; FuzzValidMatchesEncodingJSON holds it to that. It exists
// because json.Valid runs a byte-at-a-time state machine through function
// values and was the largest single cost of decoding a record (41 % of an
// envelope's decode, 59 % of a snapshot's restore); this loop does the same
// check in a fraction of the time and allocates nothing below 64 levels of
// nesting.
func Valid(data []byte) bool {
	var buf [64]bool // the open containers, true for an object
	stack := buf[:0]
	i := skipSpace(data, 0)
value:
	for {
		if i >= len(data) {
			return false
		}
		switch c := data[i]; c {
		case '{', '[':
			if len(stack) == maxDepth {
				return false
			}
			stack = append(stack, c == '{')
			i = skipSpace(data, i+1)
			if i >= len(data) {
				return false
			}
			if c == '{' {
				if data[i] == '}' {
					i++
					stack = stack[:len(stack)-1]
					break
				}
				if i = member(data, i); i < 0 {
					return false
				}
				continue value
			}
			if data[i] == ']' {
				i++
				stack = stack[:len(stack)-1]
				break
			}
			continue value
		case '"':
			if i = validString(data, i); i < 0 {
				return false
			}
		case 't':
			if i = literal(data, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = literal(data, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = literal(data, i, "null"); i < 0 {
				return false
			}
		default:
			if i = number(data, i); i < 0 {
				return false
			}
		}
		// After a complete value: close containers, or go on to the next
		// element or member.
		for {
			i = skipSpace(data, i)
			if len(stack) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			obj := stack[len(stack)-1]
			switch {
			case data[i] == ',':
				i = skipSpace(data, i+1)
				if obj {
					if i = member(data, i); i < 0 {
						return false
					}
				}
				continue value
			case obj && data[i] == '}', !obj && data[i] == ']':
				i++
				stack = stack[:len(stack)-1]
			default:
				return false
			}
		}
	}
}

// member checks an object member's key and colon at data[i] and returns the
// index of its value, or -1.
func member(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = validString(data, i); i < 0 {
		return -1
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return -1
	}
	return skipSpace(data, i+1)
}

// validString checks the string that opens at data[i] and returns the index
// after its closing quote, or -1. Like encoding/json it refuses control
// characters and unknown escapes and lets any other byte through.
func validString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i >= len(data) {
				return -1
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(data) {
					return -1
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		case c < 0x20:
			return -1
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func literal(data []byte, i int, lit string) int {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// number checks the number at data[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data) || !isDigit(data[i]):
		return -1
	case data[i] == '0':
		i++
	default:
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return -1
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return -1
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i
}
