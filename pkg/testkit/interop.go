package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot is the directory holding go.work, found by walking up from the
// test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found in any parent directory")
		}
		dir = parent
	}
}

// GoldenDir is interop/golden: records produced by the pinned Python
// package (interop/python/make_goldens.py), the current wire format. The
// older fixtures of ../shared/fixtures are FixturesDir.
func GoldenDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "interop", "golden")
}

// SchemaDir is interop/schemas: the JSON Schemas of the pinned Python
// package's models (interop/python/export_schemas.py), which the drift
// tests hold the Go models to.
func SchemaDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "interop", "schemas")
}

// Golden reads one file of GoldenDir.
func Golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(GoldenDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WireSet is one set of recorded Kafka records in the NAME.json (value) /
// NAME.record.json (topic, key, headers) layout: the current goldens of
// interop/golden, produced by the pinned Python package, or the older
// fixtures of ../shared/fixtures, kept as the compatibility floor.
type WireSet struct {
	// Name is "golden" or "fixtures"; tests name their subtests by it.
	Name string
	// Dir is the set's directory.
	Dir string
}

// Golden reports whether s is the current set (interop/golden).
func (s WireSet) Golden() bool { return s.Name == "golden" }

// Read reads one file of the set.
func (s WireSet) Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		t.Fatalf("%s set: %v", s.Name, err)
	}
	return b
}

// WireSets returns both record sets, the current goldens first. A test
// that checks recorded records runs its assertions over each, one subtest
// per set named by it, so a change in the package's records fails a test
// while the older fixtures must still pass.
func WireSets(t testing.TB) []WireSet {
	t.Helper()
	return []WireSet{{Name: "golden", Dir: GoldenDir(t)}, {Name: "fixtures", Dir: FixturesDir(t)}}
}
