// Package intern shares the values that many nodes have in common — node
// type, version, declared capabilities, endpoint names — so that the reducer
// keeps one copy of each instead of one per node. A fleet has few distinct
// values of each (nodes of one kind and release declare the same
// capabilities), and the reducer holds every node it owns in memory.
//
// The table is bounded: once it holds MaxBytes of values, or a value is
// longer than MaxLen, values are returned as they are (copied, for bytes) and
// not shared. It never shrinks, so its bound is its worst case: a fleet whose
// nodes all declare different capabilities fills it once and then gains
// nothing from it, and loses no more than MaxBytes.
package intern

import (
	"sync"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

const (
	// MaxBytes bounds the values the table keeps, in bytes (each counted
	// with 64 bytes of overhead).
	MaxBytes = 16 << 20
	// MaxLen is the longest value the table keeps (declared capabilities of
	// the Python runtime's nodes are 300–600 bytes).
	MaxLen = 4 << 10
)

const overhead = 64

var table = struct {
	sync.Mutex
	strs  map[string]string
	bytes map[string][]byte
	size  int
}{strs: map[string]string{}, bytes: map[string][]byte{}}

// keep reports whether a value of n bytes fits, and counts it if so.
func keep(n int) bool {
	if table.size+n+overhead > MaxBytes {
		return false
	}
	table.size += n + overhead
	return true
}

// String returns a string equal to s, shared with every other caller that
// passed an equal one.
func String(s string) string {
	if len(s) > MaxLen {
		return s
	}
	table.Lock()
	defer table.Unlock()
	if v, ok := table.strs[s]; ok {
		return v
	}
	if keep(len(s)) {
		table.strs[s] = s
	}
	return s
}

// StringBytes returns the string b holds, shared as String does; it does not
// allocate when the value is already in the table.
func StringBytes(b []byte) string {
	if len(b) > MaxLen {
		return string(b)
	}
	table.Lock()
	defer table.Unlock()
	if v, ok := table.strs[string(b)]; ok {
		return v
	}
	s := string(b)
	if keep(len(s)) {
		table.strs[s] = s
	}
	return s
}

// Bytes returns a slice equal to b that is shared with every other caller
// that passed equal bytes, and never b itself, so b may be reused. The result
// must not be modified.
func Bytes(b []byte) []byte {
	if len(b) > MaxLen {
		return append([]byte(nil), b...)
	}
	table.Lock()
	defer table.Unlock()
	if v, ok := table.bytes[string(b)]; ok {
		return v
	}
	v := append(make([]byte, 0, len(b)), b...)
	if keep(len(v)) {
		table.bytes[string(v)] = v
	}
	return v
}

// Size returns how many bytes of values the table holds (counted as the
// bound counts them) and whether it has stopped taking new ones.
func Size() (bytes int, full bool) {
	table.Lock()
	defer table.Unlock()
	return table.size, table.size+overhead+MaxLen > MaxBytes
}

var declared = struct {
	sync.Mutex
	m map[string]*decide.Declared
}{m: map[string]*decide.Declared{}}

// Declared returns a declaration equal to d, shared with every other caller
// that passed an equal one (nil for nil). Declarations are counted against
// the same bound as the other values, by the size of their JSON.
func Declared(d *decide.Declared) *decide.Declared {
	if d == nil {
		return nil
	}
	key := d.JSON()
	if len(key) > MaxLen {
		return d
	}
	declared.Lock()
	defer declared.Unlock()
	if v, ok := declared.m[string(key)]; ok {
		return v
	}
	table.Lock()
	kept := keep(2 * len(key)) // the key and the lists it decodes to
	table.Unlock()
	if kept {
		declared.m[string(key)] = d
	}
	return d
}
