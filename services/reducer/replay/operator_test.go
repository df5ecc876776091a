package replay

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

const topicAdmin = "onex.cmd.platform.registration-admin.v1"

func command(t *testing.T, c operator.Command) string {
	t.Helper()
	c.RequestedBy, c.Reason = "ops@replay", "test"
	c.RequestedAt = envelope.Time{Time: time.Date(2026, 3, 2, 14, 6, 0, 0, time.UTC)}
	b, err := operator.Encode(&c, uuid.MustParse("0d0d0d0d-0000-4000-8000-000000000009"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An operator's deregister takes an ACTIVE node out like a shutdown (the
// liveness-expired event, the projection update, the Consul deregister and
// the node-topics tombstone); the same command delivered again changes
// nothing; the node's next startup registers it again.
func TestReplayOperatorDeregister(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			id := uuid.MustParse(node)
			cmd := command(t, operator.Command{CommandID: uuid.MustParse("0c0c0c0c-0000-4000-8000-000000000001"),
				Command: operator.Deregister, NodeID: &id})
			outs := activeThen(t, set,
				line(topicAdmin, "2026-03-02T14:06:00Z", cmd),
				line(topicAdmin, "2026-03-02T14:06:01Z", cmd), // redelivered
				line(topicIntro, "2026-03-02T14:07:00Z", introspectionAs(t, set, "startup", "2026-03-02T14:07:00Z", nil)),
			)
			want := append(registeredOf(t, set),
				"event onex.evt.platform.node-liveness-expired.v1",
				"intent postgres.update_registration",
				"intent consul.deregister")
			want = append(want, topicsOut(t, set)...)
			want = append(want,
				"event onex.evt.platform.node-registration-initiated.v1",
				"event onex.evt.platform.node-registration-accepted.v1",
				"intent postgres.upsert_registration",
				"intent consul.register")
			wantOutputs(t, outs, "awaiting_ack", want...)
			ev := string(outs[len(registeredOf(t, set))].Value)
			if !strings.Contains(ev, "0c0c0c0c-0000-4000-8000-000000000001") || !strings.Contains(ev, "0d0d0d0d-0000-4000-8000-000000000009") {
				t.Errorf("liveness-expired event not caused by the command in its correlation: %s", ev)
			}
		})
	}
}

// An evict deregisters the nodes of the state that have been in it longer
// than the age, and no other.
func TestReplayOperatorEvict(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			evict := func(state string, age int64) string {
				return command(t, operator.Command{CommandID: uuid.New(), Command: operator.Evict, State: &state, OlderThanSeconds: &age})
			}
			outs := activeThen(t, set,
				line(topicAdmin, "2026-03-02T14:06:00Z", evict("awaiting_ack", 0)), // no node in it
				line(topicAdmin, "2026-03-02T14:06:00Z", evict("active", 3600)),    // active for 52 s only
				line(topicAdmin, "2026-03-02T14:06:00Z", evict("active", 30)),
			)
			want := append(registeredOf(t, set),
				"event onex.evt.platform.node-liveness-expired.v1",
				"intent postgres.update_registration",
				"intent consul.deregister")
			want = append(want, topicsOut(t, set)...)
			wantOutputs(t, outs, "liveness_expired", want...)
		})
	}
}

// What a node declares reaches its projection row: the contract columns,
// the sorted capability tags with the derived node-type tag, the topics.
func TestReplayDeclaredColumns(t *testing.T) {
	set := testkit.WireSets(t)[1] // the spec's fixture declares a contract and topics
	outs := activeThen(t, set)
	upsertHas(t, outs[2], `"contract_type":"effect"`, `"contract_version":"1.0.0"`, `"protocols":["ProtocolLlmEmbedding"]`,
		`"capability_tags":["node-type:effect","node.effect"]`,
		`"subscribe_topics":["onex.cmd.omnibase-infra.llm-embedding-request.v1"]`,
		`"publish_topics":["onex.evt.omnibase-infra.llm-embedding-completed.v1"]`)
	topics := strings.ReplaceAll(string(outs[8].Value), " ", "")
	for _, p := range []string{`"node_id":"` + node + `"`, `"node_type":"effect"`,
		`"subscribe_topics":["onex.cmd.omnibase-infra.llm-embedding-request.v1"]`} {
		if !strings.Contains(topics, p) {
			t.Errorf("node-topics record lacks %s: %s", p, topics)
		}
	}
}
