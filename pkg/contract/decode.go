package contract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds a contract file; real ones are a few kilobytes.
const maxFileSize = 1 << 20

// ReadFile reads and decodes the contract at path without validating it
// (Load validates). A document that does not decode strictly is an *Error.
func ReadFile(path string) (*Contract, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: path, Msg: err.Error()}}}
	}
	c, ps := decode(path, b)
	if len(ps) > 0 {
		return nil, &Error{Problems: ps}
	}
	return c, nil
}

// Parse decodes a contract document strictly, without validating it: every
// key must be one the format has, every value of the right shape. file only
// names the document in problems.
func Parse(file string, b []byte) (*Contract, error) {
	c, ps := decode(file, b)
	if len(ps) > 0 {
		return nil, &Error{Problems: ps}
	}
	return c, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the contract: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the contract: %w", err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("the contract is larger than %d bytes", maxFileSize)
	}
	return b, nil
}

var contractType = reflect.TypeFor[Contract]()

// decode parses b into a Contract. It first walks the YAML node tree against
// the Contract type, so that an unknown key or a value of the wrong shape is
// reported with its field path and line, and indexes the line of every path
// for later problems; only a clean tree is decoded.
func decode(file string, b []byte) (*Contract, []Problem) {
	c := &Contract{File: file, index: map[string]int{}}
	fail := func(line int, path, format string, args ...any) []Problem {
		return []Problem{{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, "", "the document is empty")
		}
		return nil, fail(0, "", "invalid YAML: %s", oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fail(extra.Line, "", "more than one YAML document; a contract is one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "", "the document must be a mapping of sections (name, event_bus, ...)")
	}
	w := walker{file: file, index: c.index}
	w.walk(root, contractType, "")
	if len(w.problems) > 0 {
		sortProblems(w.problems)
		return nil, w.problems
	}
	if err := root.Decode(c); err != nil {
		// The walk accepts only what decodes; this is a safety net that
		// still names the line.
		return nil, fail(0, "", "%s", oneLine(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	c.File, c.index = file, w.index
	return c, nil
}

// walker checks a YAML node tree against a Go type.
type walker struct {
	file     string
	index    map[string]int
	problems []Problem
}

func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.problems = append(w.problems, Problem{File: w.file, Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value: the zero value, reported by validation if required
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if l, dup := w.index[p]; dup {
				w.fail(k, p, "defined twice (first at line %d)", l)
				continue
			}
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				w.fail(k, p, "unknown key (known here: %s)", strings.Join(tags(t), ", "))
				continue
			}
			w.index[p] = k.Line
			w.walk(v, f.Type, p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.fail(k, path, "keys must be plain strings")
				continue
			}
			p := path + "[" + k.Value + "]"
			if l, dup := w.index[p]; dup {
				w.fail(k, p, "defined twice (first at line %d)", l)
				continue
			}
			w.index[p] = k.Line
			w.walk(v, t.Elem(), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "must be a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.index[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "must be a string, got %s", describe(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			w.fail(n, path, "must be an integer, got %s", describe(n))
			return
		}
		var x int
		if err := n.Decode(&x); err != nil {
			w.fail(n, path, "integer %s does not fit", n.Value)
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			w.fail(n, path, "must be a number, got %s", describe(n))
		}
	default:
		// The Contract type has no other kinds; a new field of another kind
		// needs a case here.
		panic(fmt.Sprintf("contract: field %s has unsupported kind %s", path, t.Kind()))
	}
}

// describe names a node's shape for a problem message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return "an unsupported value"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag := yamlName(f); tag != "" && tag == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if tag := yamlName(t.Field(i)); tag != "" {
			out = append(out, tag)
		}
	}
	return out
}

// yamlName is a field's key, "" for fields not in the file.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// oneLine joins a multi-line library message so a problem stays one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
