package registration

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

// fixturesDir finds ../shared/fixtures next to the repository by walking up
// from the working directory; it fails the test when absent (CI has it).
func fixturesDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "fixtures")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/fixtures not found in any parent directory (expected ../shared/fixtures next to the repository)")
		}
		dir = parent
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixturePayload returns the raw payload bytes of an envelope fixture.
func fixturePayload(t testing.TB, name string) []byte {
	t.Helper()
	env, err := envelope.Decode(readFixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return env.Payload
}
