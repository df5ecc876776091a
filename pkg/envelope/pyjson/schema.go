package pyjson

import (
	"strings"
	"sync"
)

// Kind is the JSON Schema type of the values a codec accepts.
type Kind uint8

// The kinds of Type.
const (
	// KindAny is any JSON value (RawJSON).
	KindAny Kind = iota
	// KindString is a string; see Type.Format and Type.Enum.
	KindString
	// KindInteger is an integer literal (no fraction, no exponent).
	KindInteger
	// KindNumber is any finite number.
	KindNumber
	// KindBoolean is true or false.
	KindBoolean
	// KindArray is an array of Type.Elem.
	KindArray
	// KindObject is a declared model (Type.Model), a map with values of
	// Type.Elem, or, with neither, an object of arbitrary values.
	KindObject
	// KindUnion is a value of one of Type.AnyOf.
	KindUnion
)

var kindNames = [...]string{"any", "string", "integer", "number", "boolean", "array", "object", "union"}

// String returns the JSON Schema name of the kind ("string", "integer",
// ...; "any" and "union" for the two kinds JSON Schema has no name for).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Type describes, in JSON Schema terms, the JSON values a codec accepts:
// what a test needs to compare a Go model with the JSON Schema of its
// Python model field by field (pydantic's model_json_schema). Every codec
// of this package carries one (Codec.Type); Types are shared between codecs
// and must not be modified.
type Type struct {
	Kind Kind
	// Nullable is set when null is accepted too (JSON Schema anyOf [T, null]).
	Nullable bool
	// Format is "uuid" or "date-time" for strings in those forms.
	Format string
	// Enum lists the accepted values of a string enumeration (a pydantic
	// Literal has one), in declaration order; nil for any string.
	Enum []string
	// Elem is the item type of an array, or the value type of a map (a
	// KindObject without a model); nil for an object of arbitrary values.
	Elem *Type
	// AnyOf lists the alternatives of a KindUnion.
	AnyOf []*Type
	// Name is the Python class name of a model, when the codec knows it.
	Name string

	model func() *Model
}

// Model is the declared shape of an object model: its fields in
// serialization order and its policy for unknown keys.
type Model struct {
	Extra  Extra
	Fields []FieldInfo
}

// FieldInfo describes one declared field of a Model.
type FieldInfo struct {
	Name string
	// Required is set for fields declared with Req.
	Required bool
	// Default is set for fields declared with Def or DefFunc (absent: the
	// default); a field that is neither required nor defaulted keeps the
	// zero value of its Go type when absent.
	Default bool
	// DefaultJSON is the value an absent optional field takes, as Encode
	// writes it: the default of a Def field, the zero value's encoding for
	// a Prop field; nil for required fields and for DefFunc fields, whose
	// default is computed at decode time (pydantic's default_factory).
	DefaultJSON []byte
	Type        *Type
}

// Model returns the declared model of an object type, or nil for every
// other type (maps and objects of arbitrary values included).
func (t *Type) Model() *Model {
	if t == nil || t.model == nil {
		return nil
	}
	return t.model()
}

// Field returns the declared field called name and whether there is one.
func (m *Model) Field(name string) (FieldInfo, bool) {
	for _, f := range m.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return FieldInfo{}, false
}

// String renders t compactly: "string(uuid)|null", "array[string]",
// "object{boolean}", "ModelSemVer", "string|integer", `string enum
// ["a", "b"]`.
func (t *Type) String() string {
	if t == nil {
		return "<nil>"
	}
	var b strings.Builder
	switch {
	case t.Kind == KindUnion:
		for i, a := range t.AnyOf {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(a.String())
		}
	case t.model != nil:
		b.WriteString("object ")
		if t.Name != "" {
			b.WriteString(t.Name)
		} else {
			b.WriteString("model")
		}
	default:
		b.WriteString(t.Kind.String())
		if t.Format != "" {
			b.WriteString("(" + t.Format + ")")
		}
		if t.Enum != nil {
			b.WriteString(" enum " + strings.Join(quoteAll(t.Enum), ", "))
		}
		if t.Elem != nil {
			if t.Kind == KindArray {
				b.WriteString("[" + t.Elem.String() + "]")
			} else {
				b.WriteString("{" + t.Elem.String() + "}")
			}
		}
	}
	if t.Nullable {
		b.WriteString("|null")
	}
	return b.String()
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = `"` + v + `"`
	}
	return out
}

// ModelType returns the Type of the object model spec describes; spec is
// called once, on first use of Type.Model (the fields' bound variables are
// never read or written). name is the Python class name, or "".
func ModelType(name string, spec func() Spec) *Type {
	return &Type{Kind: KindObject, Name: name, model: sync.OnceValue(func() *Model { return describe(spec()) })}
}

// describe reads the fields of s, whose bound variables must hold the zero
// values of a fresh model (they are set to the defaults in passing).
func describe(s Spec) *Model {
	m := &Model{Extra: s.Extra, Fields: make([]FieldInfo, len(s.Fields))}
	for i, f := range s.Fields {
		fi := FieldInfo{Name: f.name, Required: f.required, Default: f.setDef != nil, Type: f.typ}
		if !f.required && !f.dynamic {
			if f.setDef != nil {
				f.setDef()
			}
			var w Writer
			if err := f.encode(&w); err == nil {
				fi.DefaultJSON = w.Bytes()
			}
		}
		m.Fields[i] = fi
	}
	return m
}

// nullable returns a copy of t that accepts null.
func nullable(t *Type) *Type {
	if t == nil {
		return &Type{Kind: KindAny, Nullable: true}
	}
	c := *t
	c.Nullable = true
	return &c
}

// Basic types shared by the codecs of this package.
var (
	typeString   = &Type{Kind: KindString}
	typeInteger  = &Type{Kind: KindInteger}
	typeNumber   = &Type{Kind: KindNumber}
	typeBoolean  = &Type{Kind: KindBoolean}
	typeUUID     = &Type{Kind: KindString, Format: "uuid"}
	typeAny      = &Type{Kind: KindAny}
	typeObject   = &Type{Kind: KindObject}
	typeObjOrNil = &Type{Kind: KindObject, Nullable: true}
)
