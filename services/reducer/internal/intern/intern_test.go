package intern

import (
	"strconv"
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

// Once the table holds MaxBytes, new values are returned unshared and the
// table stops growing.
func TestBounded(t *testing.T) {
	before := String(strings.Repeat("b", 10))
	v := strings.Repeat("v", 1000)
	for i := 0; ; i++ {
		table.Lock()
		size := table.size
		table.Unlock()
		if size > MaxBytes {
			t.Fatalf("table holds %d bytes, bound %d", size, MaxBytes)
		}
		if size+1000+overhead > MaxBytes {
			break
		}
		String(v + strconv.Itoa(i))
	}
	if _, full := Size(); !full {
		t.Fatal("Size does not report the table full")
	}
	x := String(v + "after")
	y := String(v + "after")
	if unsafe.StringData(x) == unsafe.StringData(y) {
		t.Fatal("a full table still shared a new value")
	}
	if again := String(strings.Repeat("b", 10)); unsafe.StringData(again) != unsafe.StringData(before) {
		t.Fatal("a value kept before the table filled is no longer shared")
	}
}
