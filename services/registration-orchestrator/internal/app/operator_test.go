package app

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
)

// TestOperatorCommands: against the real broker, operator commands on the
// registration-admin topic reach the reducer input as canonical input lines
// holding the command byte for byte: a deregister keyed by its node, in the
// partition of the node's own messages and after them; an evict once on
// every partition, each naming its partition. Invalid commands (unknown
// payload field, not JSON) are dead-lettered as content errors and never
// forwarded. Each command is counted, and an accepted one is logged with
// who asked, why, and the envelope's correlation id.
func TestOperatorCommands(t *testing.T) {
	h := newHarness(t)
	reducerInput, admin := h.topic(topics.ReducerInput), h.topic(topics.RegistrationAdmin)
	h.watch(reducerInput)
	h.watch(h.dlqTopic)
	s := h.settings()
	s.RequestIntrospection = false
	in := h.start(s)
	set, err := fixtures.LoadGoldenSet()
	if err != nil {
		t.Fatal(err)
	}
	encode := func(c *operator.Command, corr uuid.UUID) []byte {
		t.Helper()
		b, err := operator.Encode(c, corr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	isAdmin := func(m *sarama.ConsumerMessage) bool {
		ri, err := pipeline.DecodeReducerInput(m.Headers, m.Value)
		return err == nil && ri.Topic == topics.RegistrationAdmin
	}
	metric := func(command, outcome string) float64 {
		return testkit.Metric(t, in.svc.Registry, "onex_orchestrator_operator_commands_total",
			map[string]string{"service": "registration-orchestrator", "command": command, "outcome": outcome})
	}

	t.Run("deregister: the node's partition, after its own messages", func(t *testing.T) {
		hb := set.Heartbeat()
		h.produce(h.topic(topics.NodeHeartbeat), "", hb.Value) // unkeyed, as a Python node sends it
		node := hb.NodeID.String()
		h.waitRecords(reducerInput, 1, 20*time.Second, "the node's heartbeat forwarded", keyIs(node))
		corr, id := uuid.New(), uuid.New()
		cmd := &operator.Command{CommandID: id, Command: operator.Deregister, NodeID: &hb.NodeID, Reason: "decommissioned host",
			RequestedBy: "alice@ops", RequestedAt: pipeline.T(time.Now())}
		value := encode(cmd, corr)
		before := time.Now()
		h.produce(admin, cmd.Key(), value)
		got := h.waitRecords(reducerInput, 2, 20*time.Second, "the deregister forwarded", keyIs(node))
		if got[0].Partition != got[1].Partition || got[1].Offset < got[0].Offset {
			t.Fatalf("heartbeat at %d/%d, deregister at %d/%d: want the same partition, deregister after", got[0].Partition, got[0].Offset,
				got[1].Partition, got[1].Offset)
		}
		ri, err := pipeline.DecodeReducerInput(got[1].Headers, got[1].Value)
		if err != nil {
			t.Fatal(err)
		}
		if ri.Topic != topics.RegistrationAdmin || !bytes.Equal(ri.Value, value) {
			t.Errorf("reducer input %s, want topic %s and the command byte for byte", pipeline.FormatReducerInput(got[1].Headers, got[1].Value), topics.RegistrationAdmin)
		}
		if ri.ReceivedAt.Before(before.Add(-time.Second)) || ri.ReceivedAt.After(time.Now()) {
			t.Errorf("received_at %s is not the receive time", ri.ReceivedAt)
		}
		if c := headerOf(got[1], "correlation_id"); c != corr.String() {
			t.Errorf("correlation_id header %q, want the envelope's %s", c, corr)
		}
		if n := metric("deregister", "accepted"); n != 1 {
			t.Errorf("deregister accepted = %v", n)
		}
		line := logLine(t, h.logPath, "operator command forwarded to the reducer", id.String())
		for k, want := range map[string]any{"command": "deregister", "node_id": node, "requested_by": "alice@ops",
			"reason": "decommissioned host", "correlation_id": corr.String()} {
			if line[k] != want {
				t.Errorf("log %s = %v, want %v (line %v)", k, line[k], want, line)
			}
		}
	})

	t.Run("evict: one copy on every partition", func(t *testing.T) {
		corr, id := uuid.New(), uuid.New()
		state, older := "awaiting_ack", int64(600)
		cmd := &operator.Command{CommandID: id, Command: operator.Evict, State: &state, OlderThanSeconds: &older,
			Reason: "stuck registrations", RequestedBy: "bob", RequestedAt: pipeline.T(time.Now())}
		value := encode(cmd, corr)
		h.produce(admin, "", value)
		isEvict := func(m *sarama.ConsumerMessage) bool {
			return isAdmin(m) && bytes.Contains(m.Value, []byte(id.String()))
		}
		got := h.waitRecords(reducerInput, 3, 20*time.Second, "the evict on every partition", isEvict)
		parts, err := testClient(t, h).Partitions(reducerInput)
		if err != nil {
			t.Fatal(err)
		}
		var seen []int32
		for _, m := range got {
			seen = append(seen, m.Partition)
			if m.Key != nil {
				t.Errorf("evict copy keyed %q, want no key", m.Key)
			}
			ri, err := pipeline.DecodeReducerInput(m.Headers, m.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ri.Topic != topics.RegistrationAdmin || !bytes.Equal(ri.Value, value) {
				t.Errorf("reducer input %s", pipeline.FormatReducerInput(m.Headers, m.Value))
			}
		}
		slices.Sort(seen)
		if !slices.Equal(seen, parts) {
			t.Fatalf("evict copies on partitions %v, want one on each of %v", seen, parts)
		}
		time.Sleep(500 * time.Millisecond)
		if n := len(h.seen(reducerInput, isEvict)); n != len(parts) {
			t.Errorf("%d evict copies, want %d", n, len(parts))
		}
		line := logLine(t, h.logPath, "operator command forwarded to the reducer", id.String())
		for k, want := range map[string]any{"command": "evict", "state": state, "older_than_seconds": float64(older), "requested_by": "bob",
			"reason": "stuck registrations", "correlation_id": corr.String()} {
			if line[k] != want {
				t.Errorf("log %s = %v, want %v (line %v)", k, line[k], want, line)
			}
		}
	})

	t.Run("invalid commands are dead-lettered, not forwarded", func(t *testing.T) {
		node := uuid.New()
		corr := uuid.New()
		// A deregister with a field the command does not have: strict
		// decoding rejects it (the reducer would not know what it means).
		payload := `{"command_id": "` + uuid.NewString() + `", "command": "deregister", "node_id": "` + node.String() + `", "reason": "",
			"requested_by": "mallory", "requested_at": "2026-12-01T10:00:00Z", "force": true}`
		env, err := envelope.New(json.RawMessage(payload), envelope.WithCorrelationID(corr))
		if err != nil {
			t.Fatal(err)
		}
		unknownField, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		h.produce(admin, node.String(), unknownField)
		h.produce(admin, "", []byte("not json"))
		got := h.waitRecords(h.dlqTopic, 2, 20*time.Second, "both dead-lettered", func(m *sarama.ConsumerMessage) bool {
			rec, err := dlq.Decode(m.Value)
			return err == nil && rec.OriginalTopic == admin
		})
		var reasons []string
		for _, m := range got {
			rec, _ := dlq.Decode(m.Value)
			if rec.FailureType != dlq.FailureTypeContent {
				t.Errorf("DLQ record %+v, want a content error", rec)
			}
			reasons = append(reasons, rec.FailureReason)
		}
		if !strings.Contains(strings.Join(reasons, "\n"), "force") {
			t.Errorf("failure reasons %q do not name the unknown field", reasons)
		}
		if n := len(h.seen(reducerInput, keyIs(node.String()))); n != 0 {
			t.Errorf("%d reducer inputs for the invalid deregister", n)
		}
		if metric("deregister", "invalid") != 1 || metric("unknown", "invalid") != 1 {
			t.Errorf("invalid counts: deregister %v, unknown %v; want 1 and 1", metric("deregister", "invalid"), metric("unknown", "invalid"))
		}
	})
}

// headerOf returns the value of a record header.
func headerOf(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// logLine returns the orchestrator's JSON log line with message msg that
// mentions id, waiting a little for the log to be written.
func logLine(t *testing.T, path, msg, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, id) {
				continue
			}
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q about %s", msg, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
