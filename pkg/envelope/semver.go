package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// SemVer is ModelSemVer: a semantic version serialized as the object
// {"major": 1, "minor": 0, "patch": 0, "prerelease": null, "build": null}.
//
// Prerelease and Build are nil when the JSON value is null and empty
// non-nil slices for []. Numeric pre-release identifiers travel as JSON
// numbers: on decode they become their decimal string, on encode an
// identifier made only of digits without a leading zero is written as a
// number, anything else as a string.
type SemVer struct {
	Major      int
	Minor      int
	Patch      int
	Prerelease []string
	Build      []string
}

// Common versions used as defaults by the Python models.
var (
	// Version100 is 1.0.0, the default onex_version and node version.
	Version100 = SemVer{Major: 1}
	// EnvelopeVersion is 2.3.0, the default envelope_version (Python's since
	// omnibase-core added producer; 2.2.0 added parent_envelope_id and
	// tenant_id). Older versions decode: the new fields are optional.
	EnvelopeVersion = SemVer{Major: 2, Minor: 3}
)

// String returns MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], identifiers joined
// with dots.
func (v SemVer) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Prerelease) > 0 {
		b.WriteByte('-')
		b.WriteString(strings.Join(v.Prerelease, "."))
	}
	if len(v.Build) > 0 {
		b.WriteByte('+')
		b.WriteString(strings.Join(v.Build, "."))
	}
	return b.String()
}

// Validate reports a negative version number as a *FieldError naming it.
func (v SemVer) Validate() error {
	for _, p := range []struct {
		name string
		n    int
	}{{"major", v.Major}, {"minor", v.Minor}, {"patch", v.Patch}} {
		if p.n < 0 {
			return pyjson.Errorf(p.name, "must be >= 0")
		}
	}
	return nil
}

// ParseSemVer parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] as defined by
// semver.org: numbers without leading zeros, identifiers of [0-9A-Za-z-],
// non-empty, numeric pre-release identifiers without leading zeros.
func ParseSemVer(s string) (SemVer, error) {
	var v SemVer
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		build := rest[i+1:]
		rest = rest[:i]
		ids, err := splitIdents(build, false)
		if err != nil {
			return SemVer{}, fmt.Errorf("semver %q: build: %w", s, err)
		}
		v.Build = ids
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		pre := rest[i+1:]
		rest = rest[:i]
		ids, err := splitIdents(pre, true)
		if err != nil {
			return SemVer{}, fmt.Errorf("semver %q: prerelease: %w", s, err)
		}
		v.Prerelease = ids
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return SemVer{}, fmt.Errorf("semver %q: want MAJOR.MINOR.PATCH", s)
	}
	nums := [3]*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !isNumeric(p) || (len(p) > 1 && p[0] == '0') {
			return SemVer{}, fmt.Errorf("semver %q: %q is not a version number", s, p)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return SemVer{}, fmt.Errorf("semver %q: %w", s, err)
		}
		*nums[i] = n
	}
	return v, nil
}

func splitIdents(s string, pre bool) ([]string, error) {
	ids := strings.Split(s, ".")
	for _, id := range ids {
		if id == "" {
			return nil, errors.New("empty identifier")
		}
		for _, c := range id {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return nil, fmt.Errorf("identifier %q has invalid character %q", id, c)
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return nil, fmt.Errorf("numeric identifier %q has a leading zero", id)
		}
	}
	return ids, nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// prereleaseIdent decodes one pre-release identifier: a string, or a
// non-negative JSON integer kept as its decimal text.
var prereleaseIdent = pyjson.Codec[string]{
	Decode: func(raw []byte) (string, error) {
		if len(raw) > 0 && raw[0] == '"' {
			return pyjson.String.Decode(raw)
		}
		n, err := pyjson.Int.Decode(raw)
		if err != nil {
			return "", &FieldError{Reason: "must be a string or a non-negative integer"}
		}
		if n < 0 {
			return "", &FieldError{Reason: "numeric identifier must be >= 0"}
		}
		return strconv.Itoa(n), nil
	},
	Encode: func(w *pyjson.Writer, v string) error {
		if isNumeric(v) && (len(v) == 1 || v[0] != '0') {
			if n, err := strconv.Atoi(v); err == nil {
				w.Int(int64(n))
				return nil
			}
		}
		w.String(v)
		return nil
	},
	Type: &pyjson.Type{Kind: pyjson.KindUnion, AnyOf: []*pyjson.Type{{Kind: pyjson.KindString}, {Kind: pyjson.KindInteger}}},
}

var (
	identList       = nilableList(prereleaseIdent)
	buildList       = nilableList(pyjson.String)
	semverCodec     = SemVerCodec
	semverNullCodec = pyjson.Nullable(semverCodec)
)

// SemVerCodec is the pyjson codec of a ModelSemVer field (object form
// only; see SemVer.UnmarshalJSON). A tolerant decode reports unknown keys
// of the version object, which a strict one ignores as Python does.
var SemVerCodec = pyjson.Codec[SemVer]{
	Decode: func(raw []byte) (SemVer, error) {
		var v SemVer
		err := v.UnmarshalJSON(raw)
		return v, err
	},
	DecodeTolerant: func(t *pyjson.Tolerant, raw []byte) (SemVer, error) {
		if v, ok := decodeSemVerFast(raw); ok {
			return v, nil
		}
		var v SemVer
		if err := pyjson.DecodeObjectTolerant(raw, v.spec(), t); err != nil {
			return SemVer{}, err
		}
		if err := v.Validate(); err != nil {
			return SemVer{}, err
		}
		return v, nil
	},
	Encode: func(w *pyjson.Writer, v SemVer) error {
		b, err := v.MarshalJSON() // Python style already
		if err != nil {
			return err
		}
		w.Raw(b)
		return nil
	},
	Type: pyjson.ModelType("ModelSemVer", func() pyjson.Spec { var v SemVer; return v.spec() }),
}

// nilableList is an array-or-null codec where null <-> nil slice.
func nilableList(c pyjson.Codec[string]) pyjson.Codec[[]string] {
	s := pyjson.Slice(c)
	t := *s.Type
	t.Nullable = true
	return pyjson.Codec[[]string]{
		Type: &t,
		Decode: func(raw []byte) ([]string, error) {
			if string(raw) == "null" {
				return nil, nil
			}
			return s.Decode(raw)
		},
		Encode: func(w *pyjson.Writer, v []string) error {
			if v == nil {
				w.Null()
				return nil
			}
			return s.Encode(w, v)
		},
	}
}

func (v *SemVer) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraIgnore, Fields: []pyjson.Field{
		pyjson.Req("major", &v.Major, pyjson.Int),
		pyjson.Req("minor", &v.Minor, pyjson.Int),
		pyjson.Req("patch", &v.Patch, pyjson.Int),
		pyjson.Prop("prerelease", &v.Prerelease, identList),
		pyjson.Prop("build", &v.Build, buildList),
	}}
}

// MarshalJSON writes the object form, Python json.dumps style.
func (v SemVer) MarshalJSON() ([]byte, error) {
	if v.Prerelease == nil && v.Build == nil {
		// Every envelope carries two versions and most records a third:
		// the common form is written directly (TestSemVerFastPaths checks
		// it is what the model writes).
		b := make([]byte, 0, 72)
		b = append(b, `{"major": `...)
		b = strconv.AppendInt(b, int64(v.Major), 10)
		b = append(b, `, "minor": `...)
		b = strconv.AppendInt(b, int64(v.Minor), 10)
		b = append(b, `, "patch": `...)
		b = strconv.AppendInt(b, int64(v.Patch), 10)
		return append(b, `, "prerelease": null, "build": null}`...), nil
	}
	return pyjson.Marshal(v.spec())
}

// UnmarshalJSON accepts only the object form (a JSON string is rejected, as
// ModelSemVer does); major, minor and patch are required non-negative
// integers, unknown keys are ignored. Errors are *FieldError with paths
// relative to the version object.
func (v *SemVer) UnmarshalJSON(b []byte) error {
	if n, ok := decodeSemVerFast(b); ok {
		*v = n
		return nil
	}
	var n SemVer
	if err := pyjson.DecodeObject(b, n.spec()); err != nil {
		return err
	}
	if err := n.Validate(); err != nil {
		return err
	}
	*v = n
	return nil
}

// decodeSemVerFast decodes the common form — major, minor and patch as
// plain non-negative integers, prerelease and build null or absent, no other
// key, none twice — without the model machinery, which cost every service a
// tenth of its CPU in make bench (three versions per heartbeat). Anything
// else is left to the model (ok false); FuzzSemVerFastMatchesModel holds
// the two to the same result.
func decodeSemVerFast(b []byte) (v SemVer, ok bool) {
	if len(b) == 0 || b[0] != '{' || !pyjson.Valid(b) {
		return SemVer{}, false
	}
	var seen [5]bool
	ok = true
	pyjson.EachMember(b, func(k, val []byte) bool {
		var slot int
		var dst *int
		switch string(k) {
		case `"major"`:
			slot, dst = 0, &v.Major
		case `"minor"`:
			slot, dst = 1, &v.Minor
		case `"patch"`:
			slot, dst = 2, &v.Patch
		case `"prerelease"`:
			slot = 3
		case `"build"`:
			slot = 4
		default:
			ok = false
			return false
		}
		if seen[slot] {
			ok = false
			return false
		}
		seen[slot] = true
		if dst == nil {
			ok = string(val) == "null"
			return ok
		}
		if len(val) > 9 { // fits an int without overflow checks
			ok = false
			return false
		}
		n := 0
		for _, c := range val {
			if c < '0' || c > '9' {
				ok = false
				return false
			}
			n = n*10 + int(c-'0')
		}
		*dst = n
		return true
	})
	if !ok || !seen[0] || !seen[1] || !seen[2] {
		return SemVer{}, false
	}
	return v, true
}
