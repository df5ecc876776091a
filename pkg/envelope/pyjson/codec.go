package pyjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Codec converts between one JSON value and a Go value of type T.
//
// Decode receives the raw bytes of exactly one well-formed JSON value and
// reports type mismatches as errors; a *FieldError it returns carries a path
// relative to the value (callers relocate it with [At]). Encode writes
// exactly one JSON value in Python json.dumps style.
type Codec[T any] struct {
	Decode func(raw []byte) (T, error)
	// DecodeTolerant is Decode for a tolerant decode (see [Tolerant]): the
	// unknown members of the models inside the value are reported to t
	// instead of failing. Codecs of values that hold no model leave it nil;
	// both modes then use Decode.
	DecodeTolerant func(t *Tolerant, raw []byte) (T, error)
	Encode         func(w *Writer, v T) error
	// Type describes the JSON values Decode accepts (shared, read-only).
	Type *Type
}

// decode decodes raw tolerantly when t is not nil, strictly otherwise.
func (c Codec[T]) decode(t *Tolerant, raw []byte) (T, error) {
	if t != nil && c.DecodeTolerant != nil {
		return c.DecodeTolerant(t, raw)
	}
	return c.Decode(raw)
}

// WithType returns c describing its values as t (for codecs built from
// functions, such as JSON, whose JSON form this package cannot know).
func (c Codec[T]) WithType(t *Type) Codec[T] {
	c.Type = t
	return c
}

// Named returns c with the Python class name of its model set in its Type.
func (c Codec[T]) Named(name string) Codec[T] {
	t := *c.Type
	t.Name = name
	c.Type = &t
	return c
}

func kindOf(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func typeError(want string, raw []byte) *FieldError {
	return &FieldError{Reason: fmt.Sprintf("must be %s, got %s", want, kindOf(raw))}
}

func isNull(raw []byte) bool { return len(raw) == 4 && string(raw) == "null" }

// String decodes a JSON string (null is rejected). Invalid UTF-8 in the
// input is replaced by U+FFFD, as encoding/json does.
var String = Codec[string]{
	Decode: decodeString,
	Encode: func(w *Writer, v string) error { w.String(v); return nil },
	Type:   typeString,
}

func decodeString(raw []byte) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", typeError("a string", raw)
	}
	if in, ok := PlainString(raw); ok {
		return string(in), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &FieldError{Reason: "must be a string", Err: err}
	}
	return s, nil
}

// PlainString returns the contents of the quoted JSON string q when they
// are exactly the string it denotes — no escapes, no control characters,
// valid UTF-8 (encoding/json would replace invalid bytes) — so a decoder can
// take the bytes without unquoting them. ok is false for anything else,
// which the caller decodes the slow way.
func PlainString(q []byte) (contents []byte, ok bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return nil, false
	}
	in := q[1 : len(q)-1]
	ascii := true
	for _, c := range in {
		if c < 0x20 || c == '\\' || c == '"' {
			return nil, false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(in) {
		return nil, false
	}
	return in, true
}

// StringOf is String for a named string type. It checks the JSON type
// only.
func StringOf[T ~string]() Codec[T] {
	return Codec[T]{
		Decode: func(raw []byte) (T, error) { s, err := decodeString(raw); return T(s), err },
		Encode: func(w *Writer, v T) error { w.String(string(v)); return nil },
		Type:   typeString,
	}
}

// Enum is StringOf for a string enumeration whose values are values (its
// Type lists them). Like StringOf it checks the JSON type only: membership
// is the model's Validate's job, so that a Go-built value is checked too.
func Enum[T ~string](values ...T) Codec[T] {
	c := StringOf[T]()
	enum := make([]string, len(values))
	for i, v := range values {
		enum[i] = string(v)
	}
	c.Type = &Type{Kind: KindString, Enum: enum}
	return c
}

// Bool decodes JSON true/false (no string or number coercion).
var Bool = Codec[bool]{
	Decode: func(raw []byte) (bool, error) {
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, typeError("a boolean", raw)
	},
	Encode: func(w *Writer, v bool) error { w.Bool(v); return nil },
	Type:   typeBoolean,
}

// Int decodes a JSON integer literal (no fraction, no exponent) that fits in
// an int. Strings and floats such as 5.0 are rejected.
var Int = Codec[int]{
	Decode: func(raw []byte) (int, error) {
		if kindOf(raw) != "a number" {
			return 0, typeError("an integer", raw)
		}
		for _, c := range raw {
			if c == '.' || c == 'e' || c == 'E' {
				return 0, &FieldError{Reason: "must be an integer, got a fractional number"}
			}
		}
		n, err := strconv.ParseInt(string(raw), 10, 0)
		if err != nil {
			return 0, &FieldError{Reason: "integer out of range", Err: err}
		}
		return int(n), nil
	},
	Encode: func(w *Writer, v int) error { w.Int(int64(v)); return nil },
	Type:   typeInteger,
}

// Float decodes any finite JSON number (integers included, as pydantic's
// float does) and encodes it with Python's float repr.
var Float = Codec[float64]{
	Decode: func(raw []byte) (float64, error) {
		if kindOf(raw) != "a number" {
			return 0, typeError("a number", raw)
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, &FieldError{Reason: "must be a finite number", Err: err}
		}
		return f, nil
	},
	Encode: func(w *Writer, v float64) error { return w.Float(v) },
	Type:   typeNumber,
}

// UUID decodes a JSON string in any form uuid.Parse accepts (canonical,
// braced, urn:uuid:, 32 hex digits; any case) and encodes the canonical
// lower-case 8-4-4-4-12 form.
var UUID = Codec[uuid.UUID]{
	Decode: func(raw []byte) (uuid.UUID, error) {
		s, err := decodeString(raw)
		if err != nil {
			return uuid.Nil, typeError("a UUID string", raw)
		}
		u, err := uuid.Parse(s)
		if err != nil {
			return uuid.Nil, &FieldError{Reason: "not a UUID", Err: err}
		}
		return u, nil
	},
	Encode: func(w *Writer, v uuid.UUID) error { w.String(v.String()); return nil },
	Type:   typeUUID,
}

// RawJSON accepts any JSON value and keeps its bytes exactly; it encodes
// them verbatim. Encoding an empty value is an error.
var RawJSON = Codec[json.RawMessage]{
	Decode: func(raw []byte) (json.RawMessage, error) {
		return append(json.RawMessage(nil), raw...), nil
	},
	Encode: func(w *Writer, v json.RawMessage) error {
		if len(v) == 0 {
			return errors.New("empty JSON value")
		}
		w.Raw(v)
		return nil
	},
	Type: typeAny,
}

// RawObject accepts a JSON object (null rejected) and keeps its bytes; it
// encodes them re-formatted Python style, and a nil value as {}.
var RawObject = Codec[json.RawMessage]{
	Decode: func(raw []byte) (json.RawMessage, error) {
		if kindOf(raw) != "an object" {
			return nil, typeError("an object", raw)
		}
		return append(json.RawMessage(nil), raw...), nil
	},
	Encode: func(w *Writer, v json.RawMessage) error {
		if len(v) == 0 {
			w.Raw([]byte("{}"))
			return nil
		}
		return w.Reformat(v)
	},
	Type: typeObject,
}

// RawObjectOrNull is RawObject that also accepts null, decoded as a nil
// RawMessage; nil encodes as null.
var RawObjectOrNull = Codec[json.RawMessage]{
	Decode: func(raw []byte) (json.RawMessage, error) {
		if isNull(raw) {
			return nil, nil
		}
		if kindOf(raw) != "an object" {
			return nil, typeError("an object or null", raw)
		}
		return append(json.RawMessage(nil), raw...), nil
	},
	Encode: func(w *Writer, v json.RawMessage) error {
		if len(v) == 0 || isNull(v) {
			w.Null()
			return nil
		}
		return w.Reformat(v)
	},
	Type: typeObjOrNil,
}

// Nullable makes c accept null (decoded as a nil pointer); a nil pointer
// encodes as null.
func Nullable[T any](c Codec[T]) Codec[*T] {
	out := Codec[*T]{
		Decode: func(raw []byte) (*T, error) {
			if isNull(raw) {
				return nil, nil
			}
			v, err := c.Decode(raw)
			if err != nil {
				return nil, err
			}
			return &v, nil
		},
		Encode: func(w *Writer, v *T) error {
			if v == nil {
				w.Null()
				return nil
			}
			return c.Encode(w, *v)
		},
		Type: nullable(c.Type),
	}
	if c.DecodeTolerant != nil {
		out.DecodeTolerant = func(t *Tolerant, raw []byte) (*T, error) {
			if isNull(raw) {
				return nil, nil
			}
			v, err := c.DecodeTolerant(t, raw)
			if err != nil {
				return nil, err
			}
			return &v, nil
		}
	}
	return out
}

// Slice decodes a JSON array (null rejected) element by element; element
// errors are located at "[i]". A nil slice encodes as [].
func Slice[T any](c Codec[T]) Codec[[]T] {
	decode := func(t *Tolerant, raw []byte) ([]T, error) {
		if kindOf(raw) != "an array" {
			return nil, typeError("an array", raw)
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, &FieldError{Reason: "must be an array", Err: err}
		}
		out := make([]T, 0, len(elems))
		for i, e := range elems {
			if t != nil {
				t.enterIndex(i)
			}
			v, err := c.decode(t, trimSpace(e))
			if t != nil {
				t.leave()
			}
			if err != nil {
				return nil, AtIndex(i, err)
			}
			out = append(out, v)
		}
		return out, nil
	}
	out := Codec[[]T]{
		Decode: func(raw []byte) ([]T, error) { return decode(nil, raw) },
		Type:   &Type{Kind: KindArray, Elem: c.Type},
		Encode: func(w *Writer, v []T) error {
			w.buf = append(w.buf, '[')
			for i, e := range v {
				if i > 0 {
					w.buf = append(w.buf, ", "...)
				}
				if err := c.Encode(w, e); err != nil {
					return AtIndex(i, err)
				}
			}
			w.buf = append(w.buf, ']')
			return nil
		},
	}
	if c.DecodeTolerant != nil {
		out.DecodeTolerant = decode
	}
	return out
}

// Map decodes a JSON object with values of one type (null rejected); value
// errors are located at the key. Go maps are unordered, so Encode writes
// keys in sorted order; a nil map encodes as {}.
func Map[T any](c Codec[T]) Codec[map[string]T] {
	decode := func(t *Tolerant, raw []byte) (map[string]T, error) {
		members, err := ParseMembers(raw)
		if err != nil {
			return nil, err
		}
		out := make(map[string]T, len(members))
		for _, m := range members {
			if t != nil {
				t.enter(m.Key)
			}
			v, err := c.decode(t, m.Value)
			if t != nil {
				t.leave()
			}
			if err != nil {
				return nil, At(m.Key, err)
			}
			out[m.Key] = v
		}
		return out, nil
	}
	out := Codec[map[string]T]{
		Decode: func(raw []byte) (map[string]T, error) { return decode(nil, raw) },
		Type:   &Type{Kind: KindObject, Elem: c.Type},
		Encode: func(w *Writer, v map[string]T) error {
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			w.buf = append(w.buf, '{')
			for i, k := range keys {
				if i > 0 {
					w.buf = append(w.buf, ", "...)
				}
				w.String(k)
				w.buf = append(w.buf, ": "...)
				if err := c.Encode(w, v[k]); err != nil {
					return At(k, err)
				}
			}
			w.buf = append(w.buf, '}')
			return nil
		},
	}
	if c.DecodeTolerant != nil {
		out.DecodeTolerant = decode
	}
	return out
}

// Object returns the codec of a nested model described by spec, which must
// bind its Fields (and Extras) to the model value it is given. Its Type
// describes the model (name it with Named).
func Object[T any](spec func(*T) Spec) Codec[T] {
	return Codec[T]{
		Decode: func(raw []byte) (T, error) {
			var v T
			err := DecodeObject(raw, spec(&v))
			return v, err
		},
		DecodeTolerant: func(t *Tolerant, raw []byte) (T, error) {
			var v T
			err := decodeObject(t, raw, spec(&v))
			return v, err
		},
		Encode: func(w *Writer, v T) error { return EncodeObject(w, spec(&v)) },
		Type:   ModelType("", func() Spec { var v T; return spec(&v) }),
	}
}

// JSON returns the codec of a type that implements json.Marshaler and
// json.Unmarshaler (such as envelope.Time). Errors from UnmarshalJSON pass
// through (a *FieldError keeps its relative path); MarshalJSON output is
// re-formatted Python style. Its Type is KindAny until set with WithType.
func JSON[T any, P interface {
	*T
	json.Marshaler
	json.Unmarshaler
}]() Codec[T] {
	return Codec[T]{
		Decode: func(raw []byte) (T, error) {
			var v T
			err := P(&v).UnmarshalJSON(raw)
			return v, err
		},
		Encode: func(w *Writer, v T) error {
			b, err := P(&v).MarshalJSON()
			if err != nil {
				return err
			}
			return w.Reformat(b)
		},
		Type: typeAny,
	}
}
