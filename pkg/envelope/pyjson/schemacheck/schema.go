// Package schemacheck compares Go models (their pyjson descriptors and
// their decoders) with the JSON Schemas of the Python models they mirror:
// interop/schemas/<Model>.json, pydantic's model_json_schema() of the
// pinned Python package, and interop/schemas/index.json, each model's and
// each nested model's extra policy. Only tests use it (the schema drift
// tests of pkg/envelope and pkg/registration).
//
// Two checks:
//
//   - Compare walks a model's schema and its Go Type (pyjson.Type) field by
//     field, recursing through $ref into nested models: names, required
//     fields (and their order), JSON types, null-ability, uuid and
//     date-time formats, enumeration values, static defaults and the
//     extra-field policy;
//   - Probe runs the Go decoder over documents built from the schema: one
//     with every field, which it must accept, then that document with one
//     change each — a required field removed, a wrong JSON type, null, a
//     malformed UUID or date-time, a value outside an enumeration, each
//     numeric and length bound crossed (which it must reject, naming the
//     field) and met exactly (which it must accept).
//
// Every problem is one line starting with the model and the field,
// "ModelNodeHeartbeatEvent.flow_window: missing in Go model". The schema
// files are written with sorted keys, so they do not give the fields'
// order; "required" lists the required fields in declaration order, which
// Compare checks; the golden records check the full order.
package schemacheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// node is one JSON Schema object.
type node = map[string]any

// Schema is one interop/schemas/<Model>.json.
type Schema struct {
	// Name is the model's name (the file's base name).
	Name string
	Root node
	Defs map[string]node
}

// Index is interop/schemas/index.json.
type Index struct {
	Models   []IndexEntry      `json:"models"`
	Packages map[string]string `json:"packages"`
}

// IndexEntry is one model of the index. Model and Schema are null for a
// wire form the package has no model for.
type IndexEntry struct {
	Model  *string `json:"model"`
	Schema *string `json:"schema"`
	// Extra is the model's extra policy: "forbid", "ignore" or "allow".
	Extra *string `json:"extra"`
	// DefsExtra gives the policy of every model in $defs ("enum" and
	// "type-alias" for definitions that are not models).
	DefsExtra map[string]string `json:"defs_extra"`
	Python    *string           `json:"python"`
	Wire      string            `json:"wire"`
}

// Name returns the model name, or "" for an entry without one.
func (e IndexEntry) Name() string {
	if e.Model == nil {
		return ""
	}
	return *e.Model
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// LoadIndex reads dir/index.json.
func LoadIndex(dir string) (*Index, error) {
	var idx Index
	if err := readJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		return nil, err
	}
	return &idx, nil
}

// Entry returns the index entry of the model called name.
func (idx *Index) Entry(name string) (IndexEntry, bool) {
	for _, e := range idx.Models {
		if e.Name() == name {
			return e, true
		}
	}
	return IndexEntry{}, false
}

// LoadSchema reads the schema of an index entry from dir.
func LoadSchema(dir string, e IndexEntry) (*Schema, error) {
	if e.Schema == nil {
		return nil, fmt.Errorf("%s: no schema file", e.Name())
	}
	var root node
	if err := readJSON(filepath.Join(dir, *e.Schema), &root); err != nil {
		return nil, err
	}
	s := &Schema{Name: e.Name(), Root: root, Defs: map[string]node{}}
	if defs, ok := root["$defs"].(node); ok {
		for k, v := range defs {
			if d, ok := v.(node); ok {
				s.Defs[k] = d
			}
		}
	}
	return s, nil
}

// sType is a schema value type, resolved: $ref followed, anyOf with null
// turned into nullable.
type sType struct {
	kind     pyjson.Kind
	nullable bool
	format   string
	enum     []string
	elem     *sType   // array items, map values; nil: any value
	anyOf    []*sType // KindUnion
	model    string   // the $defs name of a model (KindObject)
	name     string   // the $defs name of an enumeration or alias
	node     node     // the node holding the constraints (or the model)
	def      any      // the property's "default", if it has one
	hasDef   bool
}

func (s *Schema) ref(n node) (string, node, bool) {
	r, ok := n["$ref"].(string)
	if !ok {
		return "", nil, false
	}
	name := r[strings.LastIndex(r, "/")+1:]
	if r == "#" {
		return s.Name, s.Root, true
	}
	d, ok := s.Defs[name]
	return name, d, ok
}

// resolve turns a schema node into an sType. depth bounds recursive
// aliases (JsonType refers to itself).
func (s *Schema) resolve(n node) *sType {
	return s.resolveDepth(n, 0)
}

func (s *Schema) resolveDepth(n node, depth int) *sType {
	if depth > 8 {
		return &sType{kind: pyjson.KindAny, node: n}
	}
	t := &sType{node: n}
	if d, ok := n["default"]; ok {
		t.def, t.hasDef = d, true
	}
	if name, d, ok := s.ref(n); ok {
		inner := s.resolveDepth(d, depth+1)
		inner.def, inner.hasDef = t.def, t.hasDef
		if _, isModel := d["properties"]; isModel || (d["type"] == "object" && d["additionalProperties"] == nil && inner.kind == pyjson.KindObject) {
			inner.model = name
		} else if inner.name == "" {
			inner.name = name
		}
		return inner
	}
	if alts, ok := n["anyOf"].([]any); ok {
		var rest []*sType
		for _, a := range alts {
			an, _ := a.(node)
			if an["type"] == "null" {
				t.nullable = true
				continue
			}
			rest = append(rest, s.resolveDepth(an, depth+1))
		}
		switch {
		case len(rest) == 1:
			r := rest[0]
			r.nullable = r.nullable || t.nullable
			r.def, r.hasDef = t.def, t.hasDef
			return r
		case coversJSON(rest):
			t.kind = pyjson.KindAny
		default:
			t.kind = pyjson.KindUnion
			t.anyOf = rest
		}
		return t
	}
	if e, ok := n["enum"].([]any); ok {
		t.kind = pyjson.KindString
		for _, v := range e {
			t.enum = append(t.enum, fmt.Sprint(v))
		}
		return t
	}
	if c, ok := n["const"]; ok {
		t.kind = pyjson.KindString
		t.enum = []string{fmt.Sprint(c)}
		return t
	}
	switch n["type"] {
	case "string":
		t.kind = pyjson.KindString
		t.format, _ = n["format"].(string)
	case "integer":
		t.kind = pyjson.KindInteger
	case "number":
		t.kind = pyjson.KindNumber
	case "boolean":
		t.kind = pyjson.KindBoolean
	case "array":
		t.kind = pyjson.KindArray
		if items, ok := n["items"].(node); ok {
			t.elem = s.resolveDepth(items, depth+1)
		}
	case "object":
		t.kind = pyjson.KindObject
		if ap, ok := n["additionalProperties"].(node); ok {
			t.elem = s.resolveDepth(ap, depth+1)
			if t.elem.kind == pyjson.KindAny {
				t.elem = nil
			}
		}
	case nil:
		if _, ok := n["properties"]; ok {
			t.kind = pyjson.KindObject
		} else {
			t.kind = pyjson.KindAny
		}
	default:
		t.kind = pyjson.KindAny
	}
	return t
}

// coversJSON reports whether the alternatives admit every JSON value (a
// JsonType alias): a string, a number, a boolean, an array and an object.
func coversJSON(alts []*sType) bool {
	have := map[pyjson.Kind]bool{}
	for _, a := range alts {
		have[a.kind] = true
	}
	return have[pyjson.KindString] && (have[pyjson.KindNumber] || have[pyjson.KindInteger]) &&
		have[pyjson.KindBoolean] && have[pyjson.KindArray] && have[pyjson.KindObject]
}

// describe renders an sType the way pyjson.Type.String renders a Go type.
func (t *sType) String() string {
	var b strings.Builder
	switch {
	case t.kind == pyjson.KindUnion:
		var parts []string
		for _, a := range t.anyOf {
			parts = append(parts, a.String())
		}
		b.WriteString(strings.Join(parts, "|"))
	case t.model != "":
		b.WriteString("object " + t.model)
	default:
		b.WriteString(t.kind.String())
		if t.format != "" {
			b.WriteString("(" + t.format + ")")
		}
		if t.enum != nil {
			var q []string
			for _, e := range t.enum {
				q = append(q, `"`+e+`"`)
			}
			b.WriteString(" enum " + strings.Join(q, ", "))
		}
		if t.elem != nil {
			if t.kind == pyjson.KindArray {
				b.WriteString("[" + t.elem.String() + "]")
			} else {
				b.WriteString("{" + t.elem.String() + "}")
			}
		}
	}
	if t.nullable {
		b.WriteString("|null")
	}
	return b.String()
}

// properties returns a model node's properties, sorted by name (the
// schema files do not keep declaration order), and its required list.
func properties(model node) (names []string, props map[string]node, required []string) {
	props = map[string]node{}
	if p, ok := model["properties"].(node); ok {
		for k, v := range p {
			if pn, ok := v.(node); ok {
				props[k] = pn
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	if r, ok := model["required"].([]any); ok {
		for _, v := range r {
			if s, ok := v.(string); ok {
				required = append(required, s)
			}
		}
	}
	return names, props, required
}

// extraName is the pydantic spelling of a pyjson policy.
func extraName(e pyjson.Extra) string {
	switch e {
	case pyjson.ExtraForbid:
		return "forbid"
	case pyjson.ExtraAllow:
		return "allow"
	default:
		return "ignore"
	}
}
