package contract

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/topics"
)

// repoContract is the real contract file of this service.
func repoContract(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "contracts", "registration-orchestrator", "contract.yaml")
}

func TestLoadRepoContract(t *testing.T) {
	c, err := Load(repoContract(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "node_registration_orchestrator" || c.ContractVersion.String() != "1.1.1" {
		t.Errorf("identity = %s %s", c.Name, c.ContractVersion)
	}
	if got := c.IntentRouting["consul.register"]; got != topics.ConsulIntents {
		t.Errorf("consul.register routes to %q", got)
	}
	if got := c.TopicsFor(HandlerIngress); len(got) != 3 {
		t.Errorf("ingress topics = %v", got)
	}
	if c.RetryPolicy.MaxAttempts != 5 || c.RetryPolicy.Initial != time.Second || c.RetryPolicy.Max != 30*time.Second {
		t.Errorf("retry policy = %+v", c.RetryPolicy)
	}
	if err := c.RequirePublish(topics.ReducerInput, topics.RegistrationAggregations); err != nil {
		t.Error(err)
	}
	if err := c.RequirePublish("onex.evt.platform.not-listed.v1"); err == nil || !strings.Contains(err.Error(), "not-listed") {
		t.Errorf("RequirePublish of an unlisted topic: %v", err)
	}
}

// TestParseRejects edits the real contract one line at a time and checks that
// each defect is a start-up error that names it.
func TestParseRejects(t *testing.T) {
	base, err := os.ReadFile(repoContract(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new, want string
	}{
		{"missing route for an emitted intent", "  consul.deregister: onex.cmd.platform.consul-intents.v1\n", "",
			`intent type "consul.deregister" (emitted by the reducer) has no route`},
		{"route to a topic outside the registry", "postgres.update_registration: onex.cmd.platform.postgres-intents.v1",
			"postgres.update_registration: onex.cmd.platform.postgres-updates.v1", "not in the platform topic registry"},
		{"invalid topic name", "    - topic: onex.evt.platform.node-heartbeat.v1\n", "    - topic: onex.evt.platform.node-heartbeat.v1\n    - topic: Onex.Bad\n",
			`topic "Onex.Bad"`},
		{"unknown handler", "handler: intent_router}", "handler: intent_forwarder}", `unknown handler "intent_forwarder"`},
		{"handler topic not subscribed", "{topic: onex.cmd.platform.topic-catalog-query.v1, handler: topic_catalog_query}",
			"{topic: onex.evt.platform.topic-catalog-response.v1, handler: topic_catalog_query}", "is not in event_bus.subscribe_topics"},
		{"ingress topic it cannot validate", "{topic: onex.evt.platform.node-heartbeat.v1, handler: ingress}",
			"{topic: onex.intent.platform.runtime-tick.v1, handler: ingress}", "the ingress handler cannot validate"},
		{"wrong node type", "node_type: ORCHESTRATOR_GENERIC", "node_type: EFFECT_GENERIC", "node_type"},
		{"bad retry policy", "max_attempts: 5,", "max_attempts: 0,", "error_handling.retry_policy"},
		{"attempt intent without route", "    - consul.register\n  result_topic", "    - consul.register\n    - vault.write\n  result_topic",
			`"vault.write" has no route`},
		{"unknown key", "error_handling:", "error_handlin:", "invalid YAML"},
		{"route topic not published", "    - topic: onex.cmd.platform.consul-intents.v1\n", "",
			`intent_routing[consul.register]: topic "onex.cmd.platform.consul-intents.v1" is not in event_bus.publish_topics`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(string(base), tc.old, tc.new, 1)
			if doc == string(base) {
				t.Fatalf("edit %q did not apply", tc.old)
			}
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
