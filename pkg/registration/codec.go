package registration

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// model is implemented (on the pointer) by every model of this package.
type model interface {
	// spec binds the model's fields, in Python order, to its Go fields.
	spec() pyjson.Spec
	// pyName is the Python class name, used as FieldError.Model.
	pyName() string
	Validate() error
}

// normalizer is implemented by models whose Python validators rewrite
// values (recomputed or re-sorted fields). normalize must not mutate memory
// shared with the caller (copy slices before sorting).
type normalizer interface{ normalize() }

func normalize(m any) {
	if n, ok := m.(normalizer); ok {
		n.normalize()
	}
}

// decodeAs is the shared Decode<Name> implementation: syntax check, strict
// object decode, normalization, Validate; errors carry the model name.
func decodeAs[T any, P interface {
	*T
	model
}](data []byte) (*T, error) {
	p := P(new(T))
	if err := pyjson.CheckSyntax(data); err != nil {
		return nil, fmt.Errorf("%s: %w", p.pyName(), err)
	}
	if err := pyjson.DecodeObject(data, p.spec()); err != nil {
		return nil, pyjson.WithModel(p.pyName(), err)
	}
	normalize(p)
	if err := p.Validate(); err != nil {
		return nil, pyjson.WithModel(p.pyName(), err)
	}
	return (*T)(p), nil
}

// unmarshalInto is the shared UnmarshalJSON: dst is replaced only on success.
func unmarshalInto[T any, P interface {
	*T
	model
}](dst P, data []byte) error {
	v, err := decodeAs[T, P](data)
	if err != nil {
		return err
	}
	*dst = *v
	return nil
}

// marshal is the shared MarshalJSON; m is a copy owned by the caller.
func marshal(m model) ([]byte, error) {
	normalize(m)
	b, err := pyjson.Marshal(m.spec())
	if err != nil {
		return nil, pyjson.WithModel(m.pyName(), err)
	}
	return b, nil
}

// object is the codec of a nested model (no validation: the parent's
// Validate validates its children, so paths are reported from the top).
func object[T any, P interface {
	*T
	model
}]() pyjson.Codec[T] {
	base := pyjson.Object(func(v *T) pyjson.Spec { return P(v).spec() })
	return pyjson.Codec[T]{
		Decode: func(raw []byte) (T, error) {
			v, err := base.Decode(raw)
			normalize(P(&v))
			return v, err
		},
		Encode: func(w *pyjson.Writer, v T) error {
			normalize(P(&v))
			return base.Encode(w, v)
		},
	}
}

// literal is the codec of a pydantic Literal field with a default: the
// value, if present, must equal lit; encoding always writes lit.
func literal(lit string) pyjson.Codec[string] {
	return pyjson.Codec[string]{
		Decode: func(raw []byte) (string, error) {
			s, err := pyjson.String.Decode(raw)
			if err != nil {
				return "", err
			}
			if s != lit {
				return "", &envelope.FieldError{Reason: fmt.Sprintf("must be %q, got %q", lit, s)}
			}
			return s, nil
		},
		Encode: func(w *pyjson.Writer, _ string) error { w.String(lit); return nil },
	}
}

var (
	timeC       = pyjson.JSON[envelope.Time]()
	nullTime    = pyjson.Nullable(timeC)
	semverC     = pyjson.JSON[envelope.SemVer]()
	nullString  = pyjson.Nullable(pyjson.String)
	nullInt     = pyjson.Nullable(pyjson.Int)
	nullFloat   = pyjson.Nullable(pyjson.Float)
	nullUUID    = pyjson.Nullable(pyjson.UUID)
	stringList  = pyjson.Slice(pyjson.String)
	nodeKindC   = pyjson.StringOf[NodeKind]()
	stateC      = pyjson.StringOf[State]()
	semverOrStr = pyjson.Codec[envelope.SemVer]{
		Decode: func(raw []byte) (envelope.SemVer, error) {
			if len(raw) > 0 && raw[0] == '"' {
				s, err := pyjson.String.Decode(raw)
				if err != nil {
					return envelope.SemVer{}, err
				}
				v, err := envelope.ParseSemVer(s)
				if err != nil {
					return envelope.SemVer{}, &envelope.FieldError{Reason: err.Error(), Err: err}
				}
				return v, nil
			}
			return semverC.Decode(raw)
		},
		Encode: semverC.Encode,
	}
)

func newUUID() uuid.UUID { return uuid.New() }

// --- validation helpers: each returns nil or a *FieldError for field. ---

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func fieldf(field, format string, args ...any) error {
	return pyjson.Errorf(field, format, args...)
}

func intRange(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fieldf(field, "must be between %d and %d, got %d", lo, hi, v)
	}
	return nil
}

func intMin(field string, v, lo int) error {
	if v < lo {
		return fieldf(field, "must be >= %d, got %d", lo, v)
	}
	return nil
}

func optIntMin(field string, v *int, lo int) error {
	if v == nil {
		return nil
	}
	return intMin(field, *v, lo)
}

func floatMin0(field string, v float64) error {
	if v < 0 {
		return fieldf(field, "must be >= 0, got %v", v)
	}
	return nil
}

// strLen checks the length in characters (Python len), max < 0 = unbounded.
func strLen(field, s string, lo, hi int) error {
	n := utf8.RuneCountInString(s)
	if n < lo {
		return fieldf(field, "must have at least %d characters", lo)
	}
	if hi >= 0 && n > hi {
		return fieldf(field, "must have at most %d characters, got %d", hi, n)
	}
	return nil
}

func optStrLen(field string, s *string, lo, hi int) error {
	if s == nil {
		return nil
	}
	return strLen(field, *s, lo, hi)
}

type validEnum interface {
	Valid() bool
	~string
}

func enumField[E validEnum](field string, v E) error {
	if !v.Valid() {
		return fieldf(field, "%q is not a valid %T", string(v), v)
	}
	return nil
}

func optEnum[E validEnum](field string, v *E) error {
	if v == nil {
		return nil
	}
	return enumField(field, *v)
}

// nested validates a child model and locates its errors under field.
func nested(field string, err error) error { return pyjson.At(field, err) }

func sortedCopy(s []string) []string {
	if s == nil {
		return nil
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
