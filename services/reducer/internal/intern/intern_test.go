package intern

import (
	"strings"
	"testing"
	"unsafe"
)

func TestShared(t *testing.T) {
	a := String(strings.Repeat("effect", 1))
	b := StringBytes([]byte("effect"))
	if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("equal strings not shared: %q %q", a, b)
	}
	in := []byte(`{"read":true}`)
	x := Bytes(in)
	in[2] = 'X' // the caller may reuse its buffer
	y := Bytes([]byte(`{"read":true}`))
	if string(x) != `{"read":true}` || &x[0] != &y[0] {
		t.Fatalf("bytes not shared or aliasing the input: %q %q", x, y)
	}
	long := strings.Repeat("x", MaxLen+1)
	if got := String(long); got != long {
		t.Fatal("a value over MaxLen changed")
	}
	table.Lock()
	_, kept := table.strs[long]
	table.Unlock()
	if kept {
		t.Fatal("a value over MaxLen was kept")
	}
}
