package schemacheck

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Options are the deliberate differences between the Go models and the
// Python ones, each with its reason. Anything not listed is a problem.
type Options struct {
	// LenientExtra lists the models, by Python name, whose Go model may
	// accept keys the Python model forbids or ignores (only models read
	// from ONEX nodes, which the fleet decodes tolerantly anyway).
	LenientExtra map[string]string
	// Opaque lists the fields, "Model.field", that the Go model keeps as
	// raw JSON (an object) where the Python model has a model: the checks
	// do not look inside them.
	Opaque map[string]string
}

// Compare compares the Go type of the model of schema s (goType, whose
// Model() must be its declared model) with the schema, recursing into
// nested models, and returns one line per difference. e gives the extra
// policies.
func Compare(s *Schema, e IndexEntry, goType *pyjson.Type, opts Options) []string {
	c := &comparer{s: s, e: e, opts: opts, seen: map[string]bool{}}
	c.model(s.Name, s.Root, goType)
	return c.problems
}

type comparer struct {
	s        *Schema
	e        IndexEntry
	opts     Options
	seen     map[string]bool
	problems []string
}

func (c *comparer) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// policy returns the extra policy the index gives the model name.
func (c *comparer) policy(name string) string {
	if name == c.e.Name() && c.e.Extra != nil {
		return *c.e.Extra
	}
	return c.e.DefsExtra[name]
}

func (c *comparer) model(name string, def node, g *pyjson.Type) {
	if c.seen[name] {
		return
	}
	c.seen[name] = true
	gm := g.Model()
	if gm == nil {
		c.addf("%s: the Go type is %s, not a model", name, g)
		return
	}
	if g.Name != "" && g.Name != name {
		c.addf("%s: the Go model is named %s", name, g.Name)
	}
	py, goPolicy := c.policy(name), extraName(gm.Extra)
	switch {
	case py == "":
		c.addf("%s: index.json gives no extra policy", name)
	case py == goPolicy:
	case py == "forbid" && c.opts.LenientExtra[name] != "":
		// A deliberate leniency (node-originated model).
	default:
		c.addf("%s: extra=%q in Python, %q in Go", name, py, goPolicy)
	}

	names, props, required := properties(def)
	for _, n := range names {
		if _, ok := gm.Field(n); !ok {
			c.addf("%s.%s: missing in Go model (Python: %s)", name, n, c.s.resolve(props[n]))
		}
	}
	var goRequired []string
	for _, f := range gm.Fields {
		if f.Required {
			goRequired = append(goRequired, f.Name)
		}
		p, ok := props[f.Name]
		if !ok {
			c.addf("%s.%s: in the Go model, not in the Python model", name, f.Name)
			continue
		}
		c.field(name, f, p, slices.Contains(required, f.Name))
	}
	// Required fields appear in "required" in declaration order; the
	// optional ones' order is not in the schema (the goldens check it).
	var pyRequired []string
	for _, r := range required {
		if slices.Contains(goRequired, r) {
			pyRequired = append(pyRequired, r)
		}
	}
	var goOrder []string
	for _, r := range goRequired {
		if slices.Contains(pyRequired, r) {
			goOrder = append(goOrder, r)
		}
	}
	if !slices.Equal(pyRequired, goOrder) {
		c.addf("%s: required fields in order %v in Python, %v in Go", name, pyRequired, goOrder)
	}
}

func (c *comparer) field(model string, f pyjson.FieldInfo, p node, required bool) {
	where := model + "." + f.Name
	switch {
	case required && !f.Required:
		c.addf("%s: required in Python, optional in Go", where)
	case !required && f.Required:
		def := "a default factory"
		if d, ok := p["default"]; ok {
			def = jsonText(d)
		}
		c.addf("%s: optional in Python (default %s), required in Go", where, def)
	}
	st := c.s.resolve(p)
	if d, ok := p["default"]; ok && !f.Required && f.DefaultJSON != nil {
		var g any
		if err := json.Unmarshal(f.DefaultJSON, &g); err == nil && !sameJSON(d, g) {
			c.addf("%s: default %s in Python, %s in Go", where, jsonText(d), f.DefaultJSON)
		}
	}
	if reason := c.opts.Opaque[where]; reason != "" {
		if f.Type.Kind != pyjson.KindObject || f.Type.Model() != nil || f.Type.Elem != nil {
			c.addf("%s: listed as opaque, but the Go type is %s", where, f.Type)
		}
		if st.nullable != f.Type.Nullable {
			c.addf("%s: %s in Python, %s in Go", where, st, f.Type)
		}
		return
	}
	c.typ(where, st, f.Type)
}

// typ compares a schema type with a Go type at where.
func (c *comparer) typ(where string, st *sType, g *pyjson.Type) {
	if g == nil {
		c.addf("%s: the Go codec does not describe its type", where)
		return
	}
	mismatch := func() { c.addf("%s: %s in Python, %s in Go", where, st, g) }
	if st.nullable != g.Nullable {
		mismatch()
		return
	}
	switch st.kind {
	case pyjson.KindAny:
		if g.Kind != pyjson.KindAny {
			mismatch()
		}
	case pyjson.KindUnion:
		if g.Kind != pyjson.KindUnion || len(g.AnyOf) != len(st.anyOf) {
			mismatch()
			return
		}
		var want, got []string
		for i := range st.anyOf {
			want = append(want, st.anyOf[i].String())
			got = append(got, g.AnyOf[i].String())
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			mismatch()
		}
	case pyjson.KindString:
		if g.Kind != pyjson.KindString || g.Format != st.format {
			mismatch()
			return
		}
		c.enum(where, st, g)
	case pyjson.KindInteger, pyjson.KindNumber, pyjson.KindBoolean:
		if g.Kind != st.kind {
			mismatch()
		}
	case pyjson.KindArray:
		if g.Kind != pyjson.KindArray {
			mismatch()
			return
		}
		c.elem(where+"[]", st.elem, g.Elem)
	case pyjson.KindObject:
		if g.Kind != pyjson.KindObject {
			mismatch()
			return
		}
		switch {
		case st.model != "":
			if g.Model() == nil {
				c.addf("%s: the Python model %s is kept as raw JSON in Go (list it in Options.Opaque if deliberate)", where, st.model)
				return
			}
			c.model(st.model, c.s.Defs[st.model], g)
		case g.Model() != nil:
			mismatch()
		default:
			c.elem(where+"{}", st.elem, g.Elem)
		}
	}
}

// elem compares the items of an array or the values of a map; nil is any
// value (for Go: an array of raw values, an object of arbitrary values).
func (c *comparer) elem(where string, st *sType, g *pyjson.Type) {
	switch {
	case st == nil && (g == nil || g.Kind == pyjson.KindAny):
	case st == nil:
		c.addf("%s: any value in Python, %s in Go", where, g)
	case g == nil:
		c.addf("%s: %s in Python, any value in Go (not checked)", where, st)
	default:
		c.typ(where, st, g)
	}
}

func (c *comparer) enum(where string, st *sType, g *pyjson.Type) {
	if st.enum == nil && g.Enum == nil {
		return
	}
	label := where
	if st.name != "" {
		label = where + " (" + st.name + ")"
	}
	if st.enum == nil || g.Enum == nil {
		c.addf("%s: %s in Python, %s in Go", label, st, g)
		return
	}
	for _, v := range st.enum {
		if !slices.Contains(g.Enum, v) {
			c.addf("%s: value %q missing in Go", label, v)
		}
	}
	for _, v := range g.Enum {
		if !slices.Contains(st.enum, v) {
			c.addf("%s: value %q is not in the Python enum", label, v)
		}
	}
	if len(st.enum) == len(g.Enum) && !slices.Equal(st.enum, g.Enum) && sameSet(st.enum, g.Enum) {
		c.addf("%s: values in order %v in Python, %v in Go", label, st.enum, g.Enum)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// sameJSON compares two decoded JSON values, numbers by value.
func sameJSON(a, b any) bool {
	return reflect.DeepEqual(normJSON(a), normJSON(b))
}

func normJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normJSON(e)
		}
		return s
	}
	return v
}

func jsonText(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(b))
}
