package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	for d, _ := os.Getwd(); d != "/"; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(d), "shared", "fixtures", name)); err == nil {
			return b
		}
	}
	t.Fatalf("fixture %s not found (expected ../shared/fixtures beside the repo)", name)
	return nil
}

// golden reads a record of the pinned Python package (interop/golden).
func golden(t *testing.T, name string) []byte {
	t.Helper()
	for d, _ := os.Getwd(); d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			b, err := os.ReadFile(filepath.Join(d, "interop", "golden", name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("go.work not found above the working directory")
	return nil
}

func run(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestEnvelopeDecode(t *testing.T) {
	// The older fixtures (envelope 2.1.0) come back in the current form:
	// the fields added since (parent_envelope_id, tenant_id, producer) null
	// in their places, everything else as it was.
	for _, name := range []string{"introspection-effect.json", "heartbeat.json", "ack.json", "topic-catalog-query.json"} {
		in := strings.TrimSpace(string(fixture(t, name)))
		i := strings.LastIndex(in, `"source_tool": `)
		in = in[:i] + `"parent_envelope_id": null, ` + in[i:]
		i = strings.LastIndex(in, `"onex_version": `)
		in = in[:i] + `"tenant_id": null, "producer": null, ` + in[i:]
		code, out, errs := run(t, fixture(t, name), "envelope", "decode")
		if code != 0 || strings.TrimSpace(out) != in || errs != "" {
			t.Errorf("%s: exit %d, stderr %q; output differs from the fixture: %v", name, code, errs, strings.TrimSpace(out) != in)
		}
	}
	// The current Python package's records are canonical as they are.
	for _, name := range []string{"introspection-effect.json", "heartbeat-flow-window.json", "ack.json", "runtime-tick.json"} {
		in := golden(t, name)
		code, out, errs := run(t, in, "envelope", "decode")
		if code != 0 || strings.TrimSpace(out) != strings.TrimSpace(string(in)) || errs != "" {
			t.Errorf("golden %s: exit %d, stderr %q; output differs from the record: %v", name, code, errs, strings.TrimSpace(out) != strings.TrimSpace(string(in)))
		}
	}
	tests := map[string]string{
		"malformed/correlation-not-uuid.json":    `"correlation_id"`,
		"malformed/envelope-version-string.json": `"envelope_version"`,
		"malformed/missing-payload.json":         `"payload"`,
		"malformed/priority-out-of-range.json":   `"priority"`,
		"malformed/truncated.json":               `JSON`,
	}
	for name, field := range tests {
		code, out, errs := run(t, fixture(t, name), "envelope", "decode")
		if code != 1 || out != "" || !strings.Contains(errs, field) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line naming %s", name, code, out, errs, field)
		}
	}
}

func TestTopicsValidate(t *testing.T) {
	if code, out, _ := run(t, nil, "topics", "validate", "onex.evt.platform.node-heartbeat.v1", "onex.snapshot.platform.registration-snapshots.v1"); code != 0 || out != "" {
		t.Fatalf("valid names: exit %d %q", code, out)
	}
	code, out, _ := run(t, nil, "topics", "validate", "onex.evt.platform.node-heartbeat.v1", "dev.onex.evt.x.y.v1", "onex.evt.Platform.x.v1", "onex.evt.platform.x.v0")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 3 {
		t.Fatalf("exit %d, output:\n%s\nwant exit 1 and one line per bad name", code, out)
	}
	for i, name := range []string{"dev.onex.evt.x.y.v1", "onex.evt.Platform.x.v1", "onex.evt.platform.x.v0"} {
		if !strings.Contains(lines[i], name) {
			t.Errorf("line %d %q does not name %s", i, lines[i], name)
		}
	}
}

func TestReplayExitCodes(t *testing.T) {
	good := `{"topic":"onex.evt.platform.node-introspection.v1","received_at":"2026-03-02T14:05:07Z","value":` + strings.TrimSpace(string(fixture(t, "introspection-effect.json"))) + "}\n"
	code, out, errs := run(t, []byte(good), "reducer", "replay", "--ack-timeout", "10")
	if code != 0 || !strings.Contains(out, `"final_states":{"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18":"awaiting_ack"}`) || errs != "" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	code, _, errs = run(t, []byte(good+"garbage\n"), "reducer", "replay")
	if code != 1 || !strings.Contains(errs, "line 2:") {
		t.Fatalf("bad line: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := run(t, nil, "reducer", "replay", "--liveness-window", "0"); code != 2 {
		t.Fatalf("bad flag value: exit %d, want 2", code)
	}
}

func TestTopicsProvisionAndList(t *testing.T) {
	brokers := strings.Join(testkit.KafkaBrokers(t), ",")
	code, out, errs := run(t, nil, "topics", "provision", "--brokers", brokers)
	if code != 0 || !strings.Contains(out, "in sync") {
		t.Fatalf("provision: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run(t, nil, "topics", "list", "--brokers", brokers)
	snapshotLine := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "onex.snapshot.platform.registration-snapshots.v1 ") {
			snapshotLine = l
		}
	}
	if f := strings.Fields(snapshotLine); code != 0 || len(f) != 5 || f[1] != "snapshot" || f[4] != "compact" || strings.Contains(out, "missing") {
		t.Fatalf("list: exit %d\n%s\n%s", code, out, errs)
	}
}
