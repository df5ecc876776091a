package contractscmd_test

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/cli"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Execute(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateShippedContracts(t *testing.T) {
	dir := testkit.ContractsDir(t)
	code, out, errs := run(t, "contracts", "validate", "--dir", dir)
	if code != 0 || !strings.Contains(out, "every contract is valid") || errs != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cases := []struct {
		name, service, old, new string
		want                    []string // one output line each, in order: file, then field path and problem
	}{
		{"route removed: the orchestrator, the reducer and the consul effect all say so", "registration-orchestrator",
			"  consul.deregister: onex.cmd.platform.consul-intents.v1\n", "",
			[]string{
				`consul-effect/contract.yaml handled_intents[1]: no contract routes "consul.deregister" to a topic this service subscribes to`,
				`reducer/contract.yaml emitted_intents[3]: intent type "consul.deregister" has no route in any contract's intent_routing`,
				`registration-orchestrator/contract.yaml intent_routing: intent type "consul.deregister" has no route`,
			}},
		{"FSM disagreeing with the code", "reducer", "{from: ack_timed_out,    trigger: introspection, to: awaiting_ack}",
			"{from: ack_timed_out,    trigger: introspection, to: active}",
			[]string{
				"reducer/contract.yaml state_machine.transitions: transition ack_timed_out --introspection--> awaiting_ack is made by the code but not declared",
				"reducer/contract.yaml state_machine.transitions[3]: transition ack_timed_out --introspection--> active is declared but the code never makes it",
			}},
		{"topic not in the registry", "projector-effect", "    - topic: onex.evt.platform.effect-results.v1\n",
			"    - topic: onex.evt.platform.effect-outcomes.v1\n",
			[]string{
				`projector-effect/contract.yaml event_bus.publish_topics: must list "onex.evt.platform.effect-results.v1" (the code uses it)`,
				`projector-effect/contract.yaml event_bus.publish_topics[0]: topic "onex.evt.platform.effect-outcomes.v1" is not in the platform topic registry`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := testkit.EditedContracts(t, tc.service, tc.old, tc.new)
			code, out, errs := run(t, "contracts", "validate", "--dir", dir)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 1 || len(lines) != len(tc.want) || !strings.Contains(errs, "problem(s)") {
				t.Fatalf("exit %d, %d lines (want 1, %d)\nstdout:\n%s\nstderr: %s", code, len(lines), len(tc.want), out, errs)
			}
			for i, w := range tc.want {
				file, rest, _ := strings.Cut(w, " ")
				// file:line: path: problem, the line being where path is.
				re := regexp.MustCompile("^" + regexp.QuoteMeta(filepath.Join(dir, file)) + `:[1-9][0-9]*: ` + regexp.QuoteMeta(rest))
				if !re.MatchString(lines[i]) {
					t.Errorf("line %d:\n got %s\nwant %s:<line>: %s", i, lines[i], filepath.Join(dir, file), rest)
				}
			}
		})
	}
}

func TestValidateMissingDir(t *testing.T) {
	code, _, errs := run(t, "contracts", "validate", "--dir", filepath.Join(t.TempDir(), "none"))
	if code != 2 || !strings.Contains(errs, "contracts directory") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
