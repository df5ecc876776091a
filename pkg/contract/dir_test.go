package contract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFleet writes the four test contracts (router, machine, db, kv) under
// a fresh directory, with edit applied to the named one.
func writeFleet(t *testing.T, edit map[string][2]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, doc := range map[string]string{"router": routerDoc, "machine": machineDoc, "db": dbDoc, "kv": kvDoc} {
		if e, ok := edit[name]; ok {
			edited := strings.Replace(doc, e[0], e[1], 1)
			if edited == doc {
				t.Fatalf("edit %q of %s did not apply", e[0], name)
			}
			doc = edited
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(Path(dir, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fleetExpects() map[string]Expect {
	return map[string]Expect{"router": routerExpect, "machine": machineExpect, "db": effectExpects["db"], "kv": effectExpects["kv"]}
}

func TestValidateDir(t *testing.T) {
	dir := writeFleet(t, nil)
	ps, err := ValidateDir(dir, fleetExpects())
	if err != nil || len(ps) > 0 {
		t.Fatalf("good fleet: %v %v", err, strs(ps))
	}

	cases := []struct {
		name    string
		edit    map[string][2]string
		expects map[string]Expect
		file    string
		path    string
		msg     string
	}{
		{"emitted intent without a route anywhere",
			map[string][2]string{"machine": {"  - consul.register\n", "  - consul.register\n  - consul.deregister\n"}},
			map[string]Expect{}, "machine", "emitted_intents[2]", `intent type "consul.deregister" has no route in any contract`},
		{"route nobody handles",
			map[string][2]string{"kv": {"handled_intents: [consul.register]", "handled_intents: []"}},
			map[string]Expect{}, "router", "intent_routing[consul.register]", `no contract subscribes to "onex.cmd.platform.consul-intents.v1" and handles "consul.register"`},
		{"route to a topic the handler does not subscribe",
			map[string][2]string{"router": {"consul.register: onex.cmd.platform.consul-intents.v1", "consul.register: onex.cmd.platform.postgres-intents.v1"}},
			map[string]Expect{}, "kv", "handled_intents[0]", `no contract routes "consul.register" to a topic this service subscribes to`},
		{"per-file problems are reported too",
			map[string][2]string{"db": {"failure_threshold: 5", "failure_threshold: 500"}},
			fleetExpects(), "db", "error_handling.circuit_breaker.failure_threshold", "500 is out of range"},
		{"undecodable file",
			map[string][2]string{"kv": {"name: kv", "nam: kv"}},
			fleetExpects(), "kv", "nam", "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFleet(t, tc.edit)
			ps, err := ValidateDir(dir, tc.expects)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if p.File == Path(dir, tc.file) && p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Fatalf("no problem in %s at %s saying %q; got:\n%s", tc.file, tc.path, tc.msg, strings.Join(strs(ps), "\n"))
		})
	}

	t.Run("expected service without a contract", func(t *testing.T) {
		dir := writeFleet(t, nil)
		if err := os.RemoveAll(filepath.Join(dir, "kv")); err != nil {
			t.Fatal(err)
		}
		ps, err := ValidateDir(dir, fleetExpects())
		if err != nil {
			t.Fatal(err)
		}
		var missing, unrouted bool
		for _, p := range ps {
			missing = missing || (p.File == Path(dir, "kv") && strings.Contains(p.Msg, "has no contract"))
			unrouted = unrouted || strings.Contains(p.Msg, `handles "consul.register"`)
		}
		if !missing || !unrouted {
			t.Fatalf("want the missing contract and the dangling route reported; got:\n%s", strings.Join(strs(ps), "\n"))
		}
	})
	t.Run("no directory", func(t *testing.T) {
		if _, err := ValidateDir(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
			t.Fatal("a missing directory is not an error")
		}
	})
}
