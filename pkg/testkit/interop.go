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

// Golden reads one file of GoldenDir.
func Golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(GoldenDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
