package schemacheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// The date-time the generated documents use; UUIDs are drawn from a
// counter, so that no two fields are equal (models may forbid that).
const sampleTime = "2026-03-02T14:05:07.401122Z"

// Probe checks decode, the Go decoder of the model of s (strict decode and
// validation), against the constraints the schema states. It builds a
// document with every field of the model and of the models nested in it
// (a field's default where it has one, else the smallest valid value;
// arrays and maps of models get one element), which decode must accept;
// then, for every field at every level, documents with one change, which
// decode must reject with a *pyjson.FieldError naming that field — a
// required field removed, null where null is not allowed, a value of
// another JSON type (the Go models never coerce), a malformed UUID or
// date-time, a value outside an enumeration, each bound of minimum,
// maximum, exclusiveMinimum, exclusiveMaximum, minLength and maxLength
// crossed — or accept: null where it is allowed, each bound met exactly.
// Only the fields both models have are generated and probed (Compare
// reports the others), and fields listed in opts.Opaque are not looked
// into. One line per problem.
func Probe(s *Schema, goType *pyjson.Type, opts Options, decode func([]byte) error) []string {
	p := &prober{s: s, opts: opts, decode: decode, reported: map[string]bool{}}
	root := &sType{kind: pyjson.KindObject, model: s.Name, node: s.Root}
	doc, _ := p.gen(root, goType, 0).(map[string]any)
	p.doc = doc
	if err := p.run(doc); err != nil {
		b, _ := json.Marshal(doc)
		return []string{fmt.Sprintf("%s: Go rejects a document with every field, which the schema allows: %v\n%s", s.Name, err, b)}
	}
	p.walk(s.Name, goType, nil)
	return p.problems
}

// fields returns the properties of a schema model that the Go model g has
// too, with their Go types.
func (p *prober) fields(model string, g *pyjson.Type) (names []string, props map[string]node, required []string, goTypes map[string]*pyjson.Type) {
	def := p.s.Defs[model]
	if model == p.s.Name {
		def = p.s.Root
	}
	all, props, required := properties(def)
	goTypes = map[string]*pyjson.Type{}
	gm := g.Model()
	for _, n := range all {
		if gm == nil {
			continue
		}
		if f, ok := gm.Field(n); ok {
			names = append(names, n)
			goTypes[n] = f.Type
		}
	}
	return names, props, required, goTypes
}

type prober struct {
	s        *Schema
	opts     Options
	decode   func([]byte) error
	doc      map[string]any
	problems []string
	reported map[string]bool
	uuids    int
}

func (p *prober) run(doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return p.decode(b)
}

// gen builds a valid value of type st, whose Go type is g.
func (p *prober) gen(st *sType, g *pyjson.Type, depth int) any {
	if st.hasDef && st.def != nil && st.kind != pyjson.KindArray && st.kind != pyjson.KindObject {
		return clone(st.def)
	}
	if depth > 12 {
		return map[string]any{}
	}
	switch st.kind {
	case pyjson.KindUnion:
		return p.gen(st.anyOf[0], nil, depth+1)
	case pyjson.KindString:
		switch {
		case st.enum != nil:
			return st.enum[0]
		case st.format == "uuid":
			p.uuids++
			return fmt.Sprintf("3f6b2a9e-7c41-4d8a-9b1e-%012x", p.uuids)
		case st.format == "date-time":
			return sampleTime
		}
		n := 1
		if lo, ok := num(st.node, "minLength"); ok && int(lo) > n {
			n = int(lo)
		}
		if hi, ok := num(st.node, "maxLength"); ok && int(hi) < n {
			n = int(hi)
		}
		return strings.Repeat("x", n)
	case pyjson.KindInteger, pyjson.KindNumber:
		v := 0.0
		if lo, ok := num(st.node, "minimum"); ok {
			v = lo
		} else if lo, ok := num(st.node, "exclusiveMinimum"); ok {
			v = lo + 1
		}
		return number(st.kind, v)
	case pyjson.KindBoolean:
		return false
	case pyjson.KindArray:
		if st.elem != nil && st.elem.model != "" && g != nil && g.Elem != nil {
			return []any{p.gen(st.elem, g.Elem, depth+1)}
		}
		return []any{}
	case pyjson.KindObject:
		if st.model != "" {
			out := map[string]any{}
			if g == nil || g.Model() == nil {
				return out // opaque in Go
			}
			names, props, _, goTypes := p.fields(st.model, g)
			for _, n := range names {
				out[n] = p.gen(p.s.resolve(props[n]), goTypes[n], depth+1)
			}
			return out
		}
		if st.elem != nil && st.elem.model != "" && g != nil && g.Elem != nil {
			return map[string]any{"k": p.gen(st.elem, g.Elem, depth+1)}
		}
		return map[string]any{}
	}
	return map[string]any{} // any value
}

// walk probes every field of the model found at path in the document.
func (p *prober) walk(model string, g *pyjson.Type, path []any) {
	names, props, required, goTypes := p.fields(model, g)
	for _, name := range names {
		gt := goTypes[name]
		where := model + "." + name
		if p.opts.Opaque[where] != "" {
			continue
		}
		fp := append(append([]any(nil), path...), name)
		st := p.s.resolve(props[name])
		req := false
		for _, r := range required {
			req = req || r == name
		}
		if req {
			p.expect(where, fp, "the field removed", deleted{}, false)
		}
		p.values(where, fp, st)
		switch {
		case st.kind == pyjson.KindObject && st.model != "" && gt.Model() != nil:
			p.walk(st.model, gt, fp)
		case st.kind == pyjson.KindArray && st.elem != nil && st.elem.model != "" && gt.Elem != nil:
			p.walk(st.elem.model, gt.Elem, append(fp, 0))
		case st.kind == pyjson.KindObject && st.elem != nil && st.elem.model != "" && gt.Elem != nil:
			p.walk(st.elem.model, gt.Elem, append(fp, "k"))
		}
	}
}

// deleted marks a probe that removes the field.
type deleted struct{}

// values probes the values of one field.
func (p *prober) values(where string, fp []any, st *sType) {
	if st.kind == pyjson.KindAny {
		return
	}
	if st.nullable {
		p.expect(where, fp, "null", nil, true)
	} else {
		p.expect(where, fp, "null", nil, false)
	}
	if st.kind != pyjson.KindUnion {
		desc, v := wrongType(st.kind)
		p.expect(where, fp, desc, v, false)
	}
	switch st.kind {
	case pyjson.KindString:
		switch st.format {
		case "uuid":
			p.expect(where, fp, `"not-a-uuid"`, "not-a-uuid", false)
		case "date-time":
			p.expect(where, fp, `"not-a-date"`, "not-a-date", false)
		}
		if st.enum != nil {
			p.expect(where, fp, `"zz-not-a-member" (enum)`, "zz-not-a-member", false)
		}
		if lo, ok := num(st.node, "minLength"); ok && lo > 0 {
			p.expect(where, fp, fmt.Sprintf("%d characters (minLength %v)", int(lo)-1, lo), strings.Repeat("x", int(lo)-1), false)
			p.expect(where, fp, fmt.Sprintf("%d characters (minLength %v)", int(lo), lo), strings.Repeat("x", int(lo)), true)
		}
		if hi, ok := num(st.node, "maxLength"); ok {
			p.expect(where, fp, fmt.Sprintf("%d characters (maxLength %v)", int(hi)+1, hi), strings.Repeat("x", int(hi)+1), false)
			p.expect(where, fp, fmt.Sprintf("%d characters (maxLength %v)", int(hi), hi), strings.Repeat("x", int(hi)), true)
		}
	case pyjson.KindInteger, pyjson.KindNumber:
		step := 1.0
		if st.kind == pyjson.KindNumber {
			step = 0.5
		}
		bound := func(key string, bad, good float64) {
			v, _ := num(st.node, key)
			p.expect(where, fp, fmt.Sprintf("%v (%s %v)", bad, key, v), number(st.kind, bad), false)
			p.expect(where, fp, fmt.Sprintf("%v (%s %v)", good, key, v), number(st.kind, good), true)
		}
		if v, ok := num(st.node, "minimum"); ok {
			bound("minimum", v-step, v)
		}
		if v, ok := num(st.node, "maximum"); ok {
			bound("maximum", v+step, v)
		}
		if v, ok := num(st.node, "exclusiveMinimum"); ok {
			bound("exclusiveMinimum", v, v+step)
		}
		if v, ok := num(st.node, "exclusiveMaximum"); ok {
			bound("exclusiveMaximum", v, v-step)
		}
	}
}

// expect runs the document with the value at fp replaced by v (deleted{}:
// removed) and checks that decode accepts it, or rejects it naming fp.
func (p *prober) expect(where string, fp []any, desc string, v any, accept bool) {
	doc := clone(p.doc)
	if !set(doc, fp, v) {
		p.problems = append(p.problems, fmt.Sprintf("%s: cannot probe %s: no value at %s in the generated document", where, desc, pathString(fp)))
		return
	}
	err := p.run(doc)
	at := pathString(fp)
	loc := ""
	if at != where[strings.Index(where, ".")+1:] {
		loc = " (at " + at + ")"
	}
	var problem string
	switch {
	case accept && err != nil:
		problem = fmt.Sprintf("%s%s: Go rejects %s, which the schema allows: %v", where, loc, desc, err)
	case !accept && err == nil:
		problem = fmt.Sprintf("%s%s: Go accepts %s, which the schema does not", where, loc, desc)
	case !accept:
		var fe *pyjson.FieldError
		if !errors.As(err, &fe) || fe.Field != at {
			problem = fmt.Sprintf("%s%s: Go rejects %s without naming the field: %v", where, loc, desc, err)
		}
	}
	if problem != "" {
		key := where + " " + desc
		if !p.reported[key] {
			p.reported[key] = true
			p.problems = append(p.problems, problem)
		}
	}
}

func wrongType(k pyjson.Kind) (string, any) {
	switch k {
	case pyjson.KindString:
		return "a number", json.Number("12345")
	case pyjson.KindInteger:
		return `a string ("1")`, "1"
	case pyjson.KindNumber:
		return `a string ("1.5")`, "1.5"
	case pyjson.KindBoolean:
		return `a string ("true")`, "true"
	case pyjson.KindArray:
		return "an object", map[string]any{}
	default:
		return `a string ("x")`, "x"
	}
}

func number(k pyjson.Kind, v float64) json.Number {
	if k == pyjson.KindInteger {
		return json.Number(strconv.FormatInt(int64(v), 10))
	}
	return json.Number(strconv.FormatFloat(v, 'f', -1, 64))
}

func num(n node, key string) (float64, bool) {
	switch v := n[key].(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	}
	return 0, false
}

// set replaces (v = deleted{}: removes) the value at path in doc; false if
// the path does not exist.
func set(doc any, path []any, v any) bool {
	cur := doc
	for i, seg := range path {
		last := i == len(path)-1
		switch c := cur.(type) {
		case map[string]any:
			k, _ := seg.(string)
			if _, ok := c[k]; !ok {
				return false
			}
			if last {
				if _, del := v.(deleted); del {
					delete(c, k)
				} else {
					c[k] = v
				}
				return true
			}
			cur = c[k]
		case []any:
			n, ok := seg.(int)
			if !ok || n >= len(c) {
				return false
			}
			if last {
				if _, del := v.(deleted); del {
					return false
				}
				c[n] = v
				return true
			}
			cur = c[n]
		default:
			return false
		}
	}
	return false
}

func pathString(path []any) string {
	var b strings.Builder
	for _, seg := range path {
		switch s := seg.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(s) + "]")
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = clone(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = clone(e)
		}
		return s
	}
	return v
}
