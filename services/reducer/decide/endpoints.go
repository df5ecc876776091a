package decide

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Endpoint is one named endpoint of a node (spec 2.2 `endpoints`).
type Endpoint struct {
	Name string
	URL  string
}

// Endpoints is a node's endpoints sorted by name, each name once. The
// reducer keeps one per node for every node it holds, so it is a slice and
// not a map: a Go map of one entry takes about 300 bytes, which was a fifth
// of a node's memory. It encodes as the JSON object a
// map[string]string would (keys sorted), so snapshots keep their shape.
type Endpoints []Endpoint

// EndpointsOf converts m; nil for an empty map.
func EndpointsOf(m map[string]string) Endpoints {
	if len(m) == 0 {
		return nil
	}
	e := make(Endpoints, 0, len(m))
	for k, v := range m {
		e = append(e, Endpoint{Name: k, URL: v})
	}
	sort.Slice(e, func(i, j int) bool { return e[i].Name < e[j].Name })
	return e
}

// Get returns the URL of the endpoint named name.
func (e Endpoints) Get(name string) (string, bool) {
	for _, x := range e {
		if x.Name == name {
			return x.URL, true
		}
	}
	return "", false
}

// Map returns the endpoints as a map (nil when there are none).
func (e Endpoints) Map() map[string]string {
	if len(e) == 0 {
		return nil
	}
	m := make(map[string]string, len(e))
	for _, x := range e {
		m[x.Name] = x.URL
	}
	return m
}

// MarshalJSON encodes the endpoints as an object with sorted keys; no
// endpoints encode as null, as a nil map does.
func (e Endpoints) MarshalJSON() ([]byte, error) {
	if e == nil {
		return []byte("null"), nil
	}
	m := e.Map()
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes an object of strings (null leaves e unchanged, as
// for a map). A repeated key keeps its last value, as for a map.
func (e *Endpoints) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*e = EndpointsOf(m)
	if *e == nil {
		*e = Endpoints{}
	}
	return nil
}
