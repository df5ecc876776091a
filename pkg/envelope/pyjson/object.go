package pyjson

import (
	"encoding/json"
)

// Member is one key/value pair of a JSON object, the value kept as raw JSON.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Members is an ordered list of object members, used for the extra keys of
// extra="allow" models and for ignored-but-kept keys. Order is the order of
// first appearance in the input; a duplicated key keeps its first position
// and its last value, as a Python dict built from the same JSON would.
type Members []Member

// Get returns the value stored under key.
func (m Members) Get(key string) (json.RawMessage, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// Set stores value under key, replacing an existing value in place or
// appending a new member.
func (m *Members) Set(key string, value json.RawMessage) {
	for i := range *m {
		if (*m)[i].Key == key {
			(*m)[i].Value = value
			return
		}
	}
	*m = append(*m, Member{Key: key, Value: value})
}

// ParseMembers splits the JSON object in raw into its members, in input
// order, duplicates included. Values are the exact input bytes of each value
// (no surrounding whitespace). A value that is not an object yields a
// *FieldError with an empty path; malformed JSON yields an error wrapping
// ErrSyntax.
func ParseMembers(raw []byte) ([]Member, error) {
	obj, err := object(raw)
	if err != nil {
		return nil, err
	}
	return scanMembers(obj), nil
}

// object checks that raw is one well-formed JSON value and an object, and
// returns it without surrounding whitespace.
func object(raw []byte) ([]byte, error) {
	if err := CheckSyntax(raw); err != nil {
		return nil, err
	}
	raw = trimSpace(raw)
	if raw[0] != '{' {
		return nil, typeError("a JSON object", raw)
	}
	return raw, nil
}

// scanMembers splits obj, a syntactically valid JSON object (CheckSyntax),
// into its members. It only has to find where keys and values end: the
// input is known to be valid. (It replaced an encoding/json Decoder walk,
// Token and Decode per member, which cost a heartbeat envelope 125 µs and
// 590 allocations and was most of every service's CPU in make bench.)
func scanMembers(obj []byte) []Member {
	out := make([]Member, 0, 8)
	EachMember(obj, func(key, value []byte) bool {
		out = append(out, Member{Key: decodeKey(key), Value: value})
		return true
	})
	return out
}

// EachMember calls fn with each member of the JSON object obj, in input
// order, until fn returns false: the key as its quoted bytes (escapes not
// decoded) and the value's exact bytes, capacity clipped. obj must be an
// object CheckSyntax accepted, or one nested in a value it accepted, and
// begin with its "{" (values EachMember and ParseMembers return do): it is
// not checked again. That is its point: a decoder validates a document once
// and walks the objects nested in it without validating each level again.
func EachMember(obj []byte, fn func(key, value []byte) bool) {
	i := skipSpace(obj, 1)
	for obj[i] != '}' {
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
		end := stringEnd(obj, i)
		key := obj[i:end:end]
		i = skipSpace(obj, end) // at ':'
		i = skipSpace(obj, i+1)
		vend := valueEnd(obj, i)
		if !fn(key, obj[i:vend:vend]) {
			return
		}
		i = skipSpace(obj, vend)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// opens at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// valueEnd returns the index after the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
	default: // number, true, false, null
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// decodeKey returns the string a quoted JSON key denotes.
func decodeKey(q []byte) string { return string(keyBytes(q)) }

// keyBytes returns the bytes of the string a quoted key denotes: its own
// bytes when they are that string (no allocation), decoded otherwise
// (escapes, or bytes that are not UTF-8, which encoding/json, like Python,
// turns into U+FFFD).
func keyBytes(q []byte) []byte {
	if in, ok := PlainString(q); ok {
		return in
	}
	var s string
	_ = json.Unmarshal(q, &s) // valid: checked with the whole object
	return []byte(s)
}

func trimSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// Extra is a model's policy for object keys that are not declared fields,
// named after pydantic's model_config["extra"].
type Extra int

const (
	// ExtraIgnore drops unknown keys (pydantic's default).
	ExtraIgnore Extra = iota
	// ExtraForbid rejects the object, naming the first unknown key.
	ExtraForbid
	// ExtraAllow keeps unknown keys in Spec.Extras and writes them back,
	// after the declared fields, on encode.
	ExtraAllow
)

// Field declares one member of a model: its JSON name, how it is decoded
// into and encoded from a Go variable, and whether it is required or has a
// default. Build Fields with [Prop], [Req], [Def] and [DefFunc].
type Field struct {
	name     string
	required bool
	// nested is set when the codec decodes tolerantly (the value holds a
	// model): a tolerant decode then tracks the path into it.
	nested bool
	// dynamic is set for DefFunc fields: their default is computed anew.
	dynamic bool
	decode  func(t *Tolerant, raw []byte) error
	encode  func(w *Writer) error
	setDef  func()
	typ     *Type
}

// Name returns the field's JSON key.
func (f Field) Name() string { return f.name }

// Prop declares an optional field; when absent the variable is left as is
// (the zero value when decoding into a fresh model).
func Prop[T any](name string, dst *T, c Codec[T]) Field {
	// The closures capture the functions, not the codec: a spec is built
	// for every decode, and a captured codec would be one more allocation
	// per field.
	dec, tol, enc := c.Decode, c.DecodeTolerant, c.Encode
	return Field{
		name:   name,
		nested: tol != nil,
		decode: func(t *Tolerant, raw []byte) error {
			var v T
			var err error
			if t != nil && tol != nil {
				v, err = tol(t, raw)
			} else {
				v, err = dec(raw)
			}
			*dst = v
			return err
		},
		encode: func(w *Writer) error { return enc(w, *dst) },
		typ:    c.Type,
	}
}

// Req declares a required field: decoding fails with "field required" when
// the key is absent.
func Req[T any](name string, dst *T, c Codec[T]) Field {
	f := Prop(name, dst, c)
	f.required = true
	return f
}

// Def declares an optional field that takes the value def when absent.
func Def[T any](name string, dst *T, c Codec[T], def T) Field {
	f := Prop(name, dst, c)
	f.setDef = func() { *dst = def }
	return f
}

// DefFunc declares an optional field whose default is computed by def each
// time the key is absent (pydantic's default_factory).
func DefFunc[T any](name string, dst *T, c Codec[T], def func() T) Field {
	f := Prop(name, dst, c)
	f.setDef = func() { *dst = def() }
	f.dynamic = true
	return f
}

// Spec describes a model's JSON object: its fields in serialization order
// and its policy for unknown keys. Extras receives (on decode) and supplies
// (on encode) the unknown keys of an ExtraAllow model; it may be nil for
// other policies.
type Spec struct {
	Extra  Extra
	Extras *Members
	Fields []Field
}

// DecodeObject decodes the JSON object raw into the variables bound by
// s.Fields. It checks, in this order: that raw is an object; unknown keys
// (ExtraForbid: error naming the key); each field in declaration order
// (present: decoded, errors relocated under the field name; absent:
// "field required" or the default). Duplicate keys: the last value wins.
func DecodeObject(raw []byte, s Spec) error { return decodeObject(nil, raw, s) }

// DecodeObjectTolerant is DecodeObject for a tolerant decode (see
// Tolerant): unknown keys, here and in every model nested in raw, are
// appended to t.Unknown, with paths relative to raw, instead of failing.
func DecodeObjectTolerant(raw []byte, s Spec, t *Tolerant) error {
	if t == nil {
		t = &Tolerant{}
	}
	return decodeObject(t, raw, s)
}

// decodeObject is DecodeObject, tolerant when t is not nil.
func decodeObject(t *Tolerant, raw []byte, s Spec) error {
	obj, err := object(raw)
	if err != nil {
		return err
	}
	// Keys are compared as bytes with the field names (models have at most
	// 19 fields); only the extra keys a model keeps become strings.
	values := make([][]byte, len(s.Fields))
	var extras, unknown Members
	var ferr error
	EachMember(obj, func(k, v []byte) bool {
		name := keyBytes(k)
		for i := range s.Fields {
			if s.Fields[i].name == string(name) {
				values[i] = v
				return true
			}
		}
		if t != nil {
			unknown.Set(string(name), v)
		} else if s.Extra == ExtraForbid {
			ferr = &FieldError{Field: string(name), Reason: "extra fields not permitted"}
			return false
		}
		if s.Extra == ExtraAllow {
			extras.Set(string(name), v)
		}
		return true
	})
	if ferr != nil {
		return ferr
	}
	if len(unknown) > 0 {
		t.report(unknown)
	}
	for i, f := range s.Fields {
		switch {
		case values[i] != nil:
			var err error
			if t != nil && f.nested {
				t.enter(f.name)
				err = f.decode(t, values[i])
				t.leave()
			} else {
				err = f.decode(nil, values[i])
			}
			if err != nil {
				return At(f.name, err)
			}
		case f.required:
			return &FieldError{Field: f.name, Reason: "field required"}
		case f.setDef != nil:
			f.setDef()
		}
	}
	if s.Extra == ExtraAllow && s.Extras != nil {
		*s.Extras = extras
	}
	return nil
}

// EncodeObject writes the object described by s: every declared field in
// order (absent values are never omitted), then, for ExtraAllow models, the
// extra members in order, each re-formatted Python style. An extra member
// that collides with a declared field, or that is not valid JSON, is an
// error naming it.
func EncodeObject(w *Writer, s Spec) error {
	w.buf = append(w.buf, '{')
	for i, f := range s.Fields {
		if i > 0 {
			w.buf = append(w.buf, ", "...)
		}
		w.String(f.name)
		w.buf = append(w.buf, ": "...)
		if err := f.encode(w); err != nil {
			return At(f.name, err)
		}
	}
	if s.Extra == ExtraAllow && s.Extras != nil {
		n := len(s.Fields)
		for _, m := range *s.Extras {
			for _, f := range s.Fields {
				if f.name == m.Key {
					return &FieldError{Field: m.Key, Reason: "extra member duplicates a declared field"}
				}
			}
			if n > 0 {
				w.buf = append(w.buf, ", "...)
			}
			n++
			w.String(m.Key)
			w.buf = append(w.buf, ": "...)
			if err := w.Reformat(m.Value); err != nil {
				return At(m.Key, err)
			}
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

// Marshal encodes the object described by s and returns the bytes.
func Marshal(s Spec) ([]byte, error) {
	var w Writer
	if err := EncodeObject(&w, s); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}
