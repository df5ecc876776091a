package pyjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// Writer accumulates JSON in Python json.dumps style: separators ", " and
// ": ", non-ASCII characters escaped as \uXXXX (surrogate pairs above the
// BMP), floats in Python repr form. The zero value is ready to use.
type Writer struct {
	buf []byte
}

// Bytes returns the bytes written so far. The slice aliases the Writer's
// buffer until the next write.
func (w *Writer) Bytes() []byte { return w.buf }

// Null writes null.
func (w *Writer) Null() { w.buf = append(w.buf, "null"...) }

// Bool writes true or false.
func (w *Writer) Bool(v bool) { w.buf = strconv.AppendBool(w.buf, v) }

// Int writes a decimal integer.
func (w *Writer) Int(v int64) { w.buf = strconv.AppendInt(w.buf, v, 10) }

// Float writes v as Python's repr(float) does ("0.0", "30.02", "1e-05",
// "1e+16"). NaN and infinities are rejected: they are not JSON.
func (w *Writer) Float(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.New("not a finite number")
	}
	w.buf = AppendFloat(w.buf, v)
	return nil
}

// String writes s as a JSON string with Python's ensure_ascii escaping.
// Invalid UTF-8 bytes are written as \ufffd.
func (w *Writer) String(s string) { w.buf = AppendString(w.buf, s) }

// Raw writes b verbatim. The caller guarantees b is one valid JSON value.
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// Reformat writes the single JSON value in raw in Python json.dumps style,
// preserving object key order, duplicate keys and number literals exactly;
// strings are re-escaped (ensure_ascii). It fails if raw is not exactly one
// valid JSON value; on failure nothing is written.
func (w *Writer) Reformat(raw []byte) error {
	if !Valid(raw) {
		return fmt.Errorf("%w: %w", ErrSyntax, syntaxError(raw))
	}
	w.reformat(raw, skipSpace(raw, 0))
	return nil
}

// reformat writes the value that starts at raw[i], which Valid accepted,
// and returns the index after it. (It replaced an encoding/json Decoder
// walk, Token by Token, which was a quarter of the reducer's CPU in make
// bench: every intent's payload and version objects pass through here.)
func (w *Writer) reformat(raw []byte, i int) int {
	switch c := raw[i]; c {
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		w.buf = append(w.buf, c)
		i = skipSpace(raw, i+1)
		for n := 0; raw[i] != closing; n++ {
			if raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
			if n > 0 {
				w.buf = append(w.buf, ", "...)
			}
			if c == '{' {
				end := stringEnd(raw, i)
				w.reformatString(raw[i:end])
				w.buf = append(w.buf, ": "...)
				i = skipSpace(raw, end) // at ':'
				i = skipSpace(raw, i+1)
			}
			i = skipSpace(raw, w.reformat(raw, i))
		}
		w.buf = append(w.buf, closing)
		return i + 1
	case '"':
		end := stringEnd(raw, i)
		w.reformatString(raw[i:end])
		return end
	default: // number (kept as written), true, false, null
		end := valueEnd(raw, i)
		w.buf = append(w.buf, raw[i:end]...)
		return end
	}
}

// reformatString writes the quoted JSON string q escaped the Python way. A
// string of printable ASCII without escapes is written as it is: that is
// what AppendString would make of it.
func (w *Writer) reformatString(q []byte) {
	plain := true
	for _, c := range q[1 : len(q)-1] {
		if c < 0x20 || c > 0x7e || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		w.buf = append(w.buf, q...)
		return
	}
	var s string
	_ = json.Unmarshal(q, &s) // valid: checked with the whole value
	w.String(s)
}

// Reformat returns raw re-encoded in Python json.dumps style; see
// [Writer.Reformat].
func Reformat(raw []byte) ([]byte, error) {
	var w Writer
	if err := w.Reformat(raw); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string escaped like Python's json.dumps
// with ensure_ascii=True: printable ASCII verbatim, the usual two-character
// escapes for '"', '\\', \b, \f, \n, \r, \t, everything else as lower-case
// \uXXXX (UTF-16 surrogate pairs above U+FFFF). Invalid UTF-8 becomes \ufffd.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '"':
			b = append(b, '\\', '"')
			i++
			continue
		case '\\':
			b = append(b, '\\', '\\')
			i++
			continue
		case '\b':
			b = append(b, '\\', 'b')
			i++
			continue
		case '\f':
			b = append(b, '\\', 'f')
			i++
			continue
		case '\n':
			b = append(b, '\\', 'n')
			i++
			continue
		case '\r':
			b = append(b, '\\', 'r')
			i++
			continue
		case '\t':
			b = append(b, '\\', 't')
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			b = appendU4(b, 0xd800|(r>>10)&0x3ff)
			b = appendU4(b, 0xdc00|r&0x3ff)
			continue
		}
		b = appendU4(b, r)
	}
	return append(b, '"')
}

func appendU4(b []byte, r rune) []byte {
	return append(b, '\\', 'u',
		hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// AppendFloat appends v formatted like Python's repr(float): the shortest
// digits that round-trip, fixed notation with at least one fractional digit
// when 1e-4 <= |v| < 1e16, otherwise scientific notation with a signed,
// at-least-two-digit exponent. v must be finite.
func AppendFloat(b []byte, v float64) []byte {
	if v == 0 {
		if math.Signbit(v) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	// Shortest round-trip digits in scientific form: "d.ddde±XX".
	s := strconv.FormatFloat(v, 'e', -1, 64)
	epos := bytes.IndexByte([]byte(s), 'e')
	mant, expPart := s[:epos], s[epos+1:]
	exp, _ := strconv.Atoi(expPart)
	digits := make([]byte, 0, len(mant))
	for i := 0; i < len(mant); i++ {
		if mant[i] != '.' {
			digits = append(digits, mant[i])
		}
	}
	if exp >= -4 && exp < 16 {
		if exp >= 0 {
			intLen := exp + 1
			if len(digits) <= intLen {
				b = append(b, digits...)
				for i := len(digits); i < intLen; i++ {
					b = append(b, '0')
				}
				return append(b, ".0"...)
			}
			b = append(b, digits[:intLen]...)
			b = append(b, '.')
			return append(b, digits[intLen:]...)
		}
		b = append(b, "0."...)
		for i := 0; i < -exp-1; i++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	b = append(b, digits[0])
	if len(digits) > 1 {
		b = append(b, '.')
		b = append(b, digits[1:]...)
	}
	b = append(b, 'e')
	if exp < 0 {
		b = append(b, '-')
		exp = -exp
	} else {
		b = append(b, '+')
	}
	if exp < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(exp), 10)
}

// CheckSyntax returns nil if data is exactly one well-formed JSON value
// (surrounding whitespace allowed). Otherwise it returns an error wrapping
// both ErrSyntax and the *encoding/json.SyntaxError describing the problem.
func CheckSyntax(data []byte) error {
	if Valid(data) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrSyntax, syntaxError(data))
}

func syntaxError(data []byte) error {
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	if err == nil {
		return io.ErrUnexpectedEOF // unreachable for invalid input
	}
	return err
}
