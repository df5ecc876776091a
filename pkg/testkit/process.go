package testkit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ContractsDir is the repository's contracts directory (next to go.work).
func ContractsDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "contracts")
}

// EditedContracts copies the repository's contracts into a fresh temporary
// directory, replaces the first old with new in service's contract (the test
// fails if old does not occur) and returns the directory, for
// ONEX_CONTRACTS_DIR.
func EditedContracts(t testing.TB, service, old, new string) string {
	t.Helper()
	src := ContractsDir(t)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	edited := false
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name(), "contract.yaml"))
		if err != nil {
			continue
		}
		if e.Name() == service {
			s := strings.Replace(string(b), old, new, 1)
			if s == string(b) {
				t.Fatalf("%s/contract.yaml has no %q to replace", service, old)
			}
			b, edited = []byte(s), true
		}
		if err := os.MkdirAll(filepath.Join(dst, e.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name(), "contract.yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !edited {
		t.Fatalf("no contract for service %q in %s", service, src)
	}
	return dst
}

var builds sync.Map // package path -> *build

type build struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// BuildCommand builds the main package pkg (an import path) once per test
// binary and returns the executable's path.
func BuildCommand(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "onex-cmd-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		b.out, b.err = exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.path
}

// RunToExit runs bin with env added to the test's environment and waits at
// most timeout for it to exit. It returns the exit code and the combined
// output; a process still running at the deadline is killed and fails the
// test.
func RunToExit(t testing.TB, bin string, env []string, timeout time.Duration) (code int, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s still running after %v; output:\n%s", filepath.Base(bin), timeout, out)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("run %s: %v", bin, err)
	return 0, ""
}
