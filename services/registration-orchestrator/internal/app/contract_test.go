package app

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/expect"
)

// TestShippedContract loads the repository's contract against the code.
func TestShippedContract(t *testing.T) {
	c, err := contract.Load(contract.Path(testkit.ContractsDir(t), expect.Service), expect.Contract())
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != expect.Name || c.ContractVersion.String() != "1.1.1" {
		t.Errorf("identity = %s %s; the consumer group ids depend on it (spec 3.4)", c.Name, c.ContractVersion)
	}
	for it, want := range map[string]string{"consul.register": topics.ConsulIntents, "postgres.update_registration": topics.PostgresIntents} {
		if got := c.IntentRouting[it]; got != want {
			t.Errorf("%s routes to %q, want %q", it, got, want)
		}
	}
	if got := c.TopicsFor(expect.HandlerIngress); len(got) != 3 {
		t.Errorf("ingress topics = %v", got)
	}
	want := retry.Policy{MaxAttempts: 5, Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.25}
	if c.Retry() != want {
		t.Errorf("retry policy = %+v, want %+v", c.Retry(), want)
	}
}

// TestContractAgainstCode edits the shipped contract in ways only the
// orchestrator's code can tell are wrong.
func TestContractAgainstCode(t *testing.T) {
	cases := []struct{ name, old, new, want string }{
		{"missing route for an emitted intent", "  consul.deregister: onex.cmd.platform.consul-intents.v1\n", "",
			`intent_routing: intent type "consul.deregister" has no route`},
		{"unknown handler", "handler: intent_router}", "handler: intent_forwarder}", `unknown handler "intent_forwarder"`},
		{"ingress topic it cannot validate", "{topic: onex.evt.platform.node-heartbeat.v1, handler: ingress}",
			"{topic: onex.intent.platform.runtime-tick.v1, handler: ingress}", `handler "ingress" cannot serve "onex.intent.platform.runtime-tick.v1"`},
		{"a topic the code publishes to is not listed", "    - topic: onex.cmd.platform.reducer-input.v1\n", "",
			`event_bus.publish_topics: must list "onex.cmd.platform.reducer-input.v1"`},
		{"no result aggregation", "result_aggregation:", "result_aggregatio:", "result_aggregatio: unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := testkit.EditedContracts(t, expect.Service, tc.old, tc.new)
			_, err := contract.Load(contract.Path(dir, expect.Service), expect.Contract())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestRefusesBrokenContract runs the orchestrator binary on contracts whose
// routing table lacks an intent type the reducer emits: it must exit 2 at
// once, saying so in one log line.
func TestRefusesBrokenContract(t *testing.T) {
	dir := testkit.EditedContracts(t, expect.Service, "  consul.deregister: onex.cmd.platform.consul-intents.v1\n", "")
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/registration-orchestrator/cmd/registration-orchestrator")
	code, out := testkit.RunToExit(t, bin, []string{"ONEX_CONTRACTS_DIR=" + dir, "ONEX_ORCHESTRATOR_CONTRACT=", "OMNIBASE_ENV_FILE=/nonexistent",
		"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1"}, time.Minute)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, out)
	}
	var errs []string
	for _, l := range strings.Split(out, "\n") {
		var rec struct{ Level string }
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Level == "ERROR" {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], contract.Path(dir, expect.Service)) ||
		!strings.Contains(errs[0], `intent type \"consul.deregister\" has no route`) {
		t.Fatalf("want one ERROR line naming the file and the missing route; output:\n%s", out)
	}
}
