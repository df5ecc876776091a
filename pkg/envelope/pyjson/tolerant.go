package pyjson

import (
	"encoding/json"
	"strconv"
)

// Unknown is a member of a decoded document that its model does not
// declare, met by a tolerant decode.
type Unknown struct {
	// Path is the member's JSON path from the root of the decoded document,
	// spelled as FieldError.Field is: "flow_window",
	// "declared_capabilities.new_thing",
	// "event_bus.publish_topics[0].retention".
	Path string
	// Value is the member's value exactly as in the input (it aliases the
	// input; copy it to keep it beyond the input's life).
	Value json.RawMessage
}

// Tolerant is the state of a tolerant decode, the reader of messages
// written by producers that may be newer than this code (ONEX nodes).
//
// A tolerant decode (DecodeObjectTolerant, Codec.DecodeTolerant) differs
// from a strict one (DecodeObject, Codec.Decode) in one respect only: a key
// that is not a declared field of its model is never an error, whatever
// the model's Extra policy, at every nesting level (models inside models,
// arrays and maps). Each such member is appended to Unknown, and kept as
// well where the policy keeps it (ExtraAllow: in the model's Extras).
// Everything else — JSON types, required fields, UUIDs, timestamps, the
// models' Validate constraints — fails exactly as in a strict decode, with
// the same *FieldError. For a document a strict decode accepts, a tolerant
// decode yields the same value; its unknowns are then the keys the strict
// decode dropped (ExtraIgnore) or kept as extras (ExtraAllow).
//
// The zero value is ready to use; a Tolerant may be reused after setting
// Unknown to Unknown[:0]. It is not safe for concurrent use.
type Tolerant struct {
	// Unknown lists the unknown members met, in the order met: the members
	// of an object in input order (a key repeated in one object once, with
	// its last value), before the members of the models nested in it.
	Unknown []Unknown

	path []pathSeg  // the location of the value being decoded
	buf  [8]pathSeg // path's first backing array: models nest less deeply
}

// pathSeg is an object key, or an array index when index >= 0.
type pathSeg struct {
	key   string
	index int
}

// enter and leave bracket the decoding of a nested value.
func (t *Tolerant) enter(key string) { t.push(pathSeg{key: key, index: -1}) }
func (t *Tolerant) enterIndex(i int) { t.push(pathSeg{index: i}) }
func (t *Tolerant) leave()           { t.path = t.path[:len(t.path)-1] }

func (t *Tolerant) push(s pathSeg) {
	if t.path == nil {
		t.path = t.buf[:0]
	}
	t.path = append(t.path, s)
}

// report records the unknown members of the object being decoded.
func (t *Tolerant) report(members Members) {
	var b []byte
	for i, seg := range t.path {
		b = seg.append(b, i == 0)
	}
	for _, m := range members {
		t.Unknown = append(t.Unknown, Unknown{Path: string(pathSeg{key: m.Key, index: -1}.append(b, len(t.path) == 0)), Value: m.Value})
	}
}

// append appends the segment to a path: an index as "[i]", a key after a
// dot unless it is the first segment. Empty keys and keys that look like
// indices are kept as they are ("metadata." is the key "" of metadata,
// "a.[0]" the key "[0]" of a).
func (s pathSeg) append(b []byte, first bool) []byte {
	if s.index >= 0 {
		return append(strconv.AppendInt(append(b, '['), int64(s.index), 10), ']')
	}
	if !first {
		b = append(b, '.')
	}
	return append(b, s.key...)
}

// RelocateUnknown prepends parent to the Path of every member of us (in
// place) and returns us: the unknowns of a payload decoded on its own,
// located in the envelope that carries it ("payload").
func RelocateUnknown(parent string, us []Unknown) []Unknown {
	for i := range us {
		us[i].Path = joinPath(parent, us[i].Path)
	}
	return us
}

// UnknownMembers returns the unknowns as Members, path → value, in order.
func UnknownMembers(us []Unknown) Members {
	if len(us) == 0 {
		return nil
	}
	out := make(Members, len(us))
	for i, u := range us {
		out[i] = Member{Key: u.Path, Value: u.Value}
	}
	return out
}
