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
	return decodeWith[T, P](nil, data)
}

// decodeTolerantAs is the shared Decode<Name>Tolerant implementation:
// decodeAs, except that unknown keys at every level are returned (paths
// relative to data) instead of failing (pyjson.Tolerant).
func decodeTolerantAs[T any, P interface {
	*T
	model
}](data []byte) (*T, []pyjson.Unknown, error) {
	var t pyjson.Tolerant
	v, err := decodeWith[T, P](&t, data)
	if err != nil {
		return nil, nil, err
	}
	return v, t.Unknown, nil
}

// decodeWith decodes tolerantly when t is not nil, strictly otherwise.
func decodeWith[T any, P interface {
	*T
	model
}](t *pyjson.Tolerant, data []byte) (*T, error) {
	p := P(new(T))
	if err := pyjson.CheckSyntax(data); err != nil {
		return nil, fmt.Errorf("%s: %w", p.pyName(), err)
	}
	var err error
	if t != nil {
		err = pyjson.DecodeObjectTolerant(data, p.spec(), t)
	} else {
		err = pyjson.DecodeObject(data, p.spec())
	}
	if err != nil {
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
// Its Type describes the model under its Python name.
func object[T any, P interface {
	*T
	model
}]() pyjson.Codec[T] {
	base := pyjson.Object(func(v *T) pyjson.Spec { return P(v).spec() }).Named(P(new(T)).pyName())
	return pyjson.Codec[T]{
		Decode: func(raw []byte) (T, error) {
			v, err := base.Decode(raw)
			normalize(P(&v))
			return v, err
		},
		DecodeTolerant: func(t *pyjson.Tolerant, raw []byte) (T, error) {
			v, err := base.DecodeTolerant(t, raw)
			normalize(P(&v))
			return v, err
		},
		Encode: func(w *pyjson.Writer, v T) error {
			normalize(P(&v))
			return base.Encode(w, v)
		},
		Type: base.Type,
	}
}

var (
	timeC      = envelope.TimeCodec
	nullTime   = pyjson.Nullable(timeC)
	semverC    = envelope.SemVerCodec
	nullString = pyjson.Nullable(pyjson.String)
	nullInt    = pyjson.Nullable(pyjson.Int)
	nullFloat  = pyjson.Nullable(pyjson.Float)
	nullUUID   = pyjson.Nullable(pyjson.UUID)
	stringList = pyjson.Slice(pyjson.String)
	nodeKindC  = pyjson.Enum(NodeKinds...).Named("EnumNodeKind")
	stateC     = pyjson.Enum(States...).Named("EnumRegistrationState")
	reasonC    = pyjson.Enum(IntrospectionReasons...).Named("EnumIntrospectionReason")
	// semverOrStr is a ModelSemVer field that also accepts "1.2.3" (parsed
	// with envelope.ParseSemVer), as the heartbeat's node_version validator
	// does; it is always encoded as an object. The schema of such a field
	// shows only the object: the string form is a "before" validator's.
	semverOrStr = pyjson.Codec[envelope.SemVer]{
		Decode: func(raw []byte) (envelope.SemVer, error) { return decodeSemverOrStr(nil, raw) },
		DecodeTolerant: func(t *pyjson.Tolerant, raw []byte) (envelope.SemVer, error) {
			return decodeSemverOrStr(t, raw)
		},
		Encode: semverC.Encode,
		Type:   semverC.Type,
	}
)

func decodeSemverOrStr(t *pyjson.Tolerant, raw []byte) (envelope.SemVer, error) {
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
	if t != nil {
		return semverC.DecodeTolerant(t, raw)
	}
	return semverC.Decode(raw)
}

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

// Codecs of composite field types, built once: a spec is built for every
// decode, and building a codec in it would allocate each time.
var (
	boolMapC          = pyjson.Map(pyjson.Bool)
	catalogEntriesC   = pyjson.Slice(catalogEntryC)
	consumerDeltasC   = pyjson.Slice(consumerDeltaC)
	flagMetadataMapC  = pyjson.Map(flagMetadataC)
	nullBoolC         = pyjson.Nullable(pyjson.Bool)
	nullCapabilitiesC = pyjson.Nullable(capabilitiesC)
	nullContractC     = pyjson.Nullable(contractC)
	nullEventBusC     = pyjson.Nullable(eventBusC)
	nullFlowWindowC   = pyjson.Nullable(flowWindowC)
	nullMCPC          = pyjson.Nullable(mcpC)
	nullNodeKindC     = pyjson.Nullable(nodeKindC)
	nullPerfC         = pyjson.Nullable(perfC)
	produceDeltasC    = pyjson.Slice(produceDeltaC)
	stringMapC        = pyjson.Map(pyjson.String)
	topicEntriesC     = pyjson.Slice(topicEntryC)
)
