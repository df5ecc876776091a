package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// read is one recorded record value of set, trimmed.
func read(t *testing.T, set testkit.WireSet, name string) string {
	t.Helper()
	return strings.TrimSpace(string(set.Read(t, name)))
}

func line(topic, at, value string) string {
	return fmt.Sprintf(`{"topic": %q, "received_at": %q, "value": %s}`, topic, at, value)
}

type out struct {
	Kind        string            `json:"kind"`
	IntentType  string            `json:"intent_type"`
	Topic       string            `json:"topic"`
	Key         string            `json:"key"`
	Value       json.RawMessage   `json:"value"`
	FinalStates map[string]string `json:"final_states"`
}

func run(t *testing.T, input string) ([]out, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	skipped, err := Run(strings.NewReader(input), &stdout, &stderr, decide.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	var outs []out
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o out
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("output line is not JSON: %s", sc.Text())
		}
		outs = append(outs, o)
	}
	return outs, stderr.String(), skipped
}

const node = "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"

// The Python records, replayed: introspection, ack, heartbeat, and ticks
// before and after the liveness deadline — the current package's
// (interop/golden: envelope ticks) and the older fixtures (bare ticks).
func TestReplayPythonFixtures(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { replayPythonRecords(t, set) })
	}
}

func replayPythonRecords(t *testing.T, set testkit.WireSet) {
	read := func(name string) string { return read(t, set, name) }
	// The recorded tick (now = scheduled_at = 14:05:08Z in both sets) at now.
	recordedTick := read("runtime-tick.json")
	if strings.Count(recordedTick, `"2026-03-02T14:05:08Z"`) != 2 {
		t.Fatalf("%s runtime-tick: now and scheduled_at are not 2026-03-02T14:05:08Z: %s", set.Name, recordedTick)
	}
	tick := func(now string) string {
		return strings.ReplaceAll(recordedTick, `"2026-03-02T14:05:08Z"`, fmt.Sprintf("%q", now))
	}
	intro := read("introspection-effect.json")
	introEnv, err := envelope.Decode([]byte(intro))
	if err != nil {
		t.Fatal(err)
	}
	introEv, err := envelope.DecodePayload(introEnv, registration.DecodeIntrospectionEvent)
	if err != nil {
		t.Fatal(err)
	}
	corr := introEv.CorrelationID.String()
	input := strings.Join([]string{
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:07.5Z", intro),
		line("onex.cmd.platform.node-registration-acked.v1", "2026-03-02T14:05:08Z", read("ack.json")),
		line("onex.evt.platform.node-heartbeat.v1", "2026-03-02T14:05:37.5Z", read("heartbeat.json")),
		line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:06:00Z", tick("2026-03-02T14:06:00Z")),
		line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:08:00Z", tick("2026-03-02T14:08:00Z")),
	}, "\n")
	outs, stderr, skipped := run(t, input)
	if skipped != 0 || stderr != "" {
		t.Fatalf("skipped %d: %s", skipped, stderr)
	}
	want := []string{
		"event onex.evt.platform.node-registration-initiated.v1",
		"event onex.evt.platform.node-registration-accepted.v1",
		"intent postgres.upsert_registration",
		"intent consul.register",
		"event onex.evt.platform.node-registration-ack-received.v1",
		"event onex.evt.platform.node-became-active.v1",
		"intent postgres.update_registration", // ack
		"intent consul.register",              // ack: health passing
	}
	want = append(want, topicsOut(t, set)...) // ACTIVE with the topics it declares
	want = append(want,
		"intent postgres.update_registration", // heartbeat
		// the first tick is before the deadline (heartbeat 14:05:37 + 90 s)
		"event onex.evt.platform.node-liveness-expired.v1",
		"intent postgres.update_registration",
		"intent consul.deregister",
	)
	want = append(want, topicsOut(t, set)...) // a tombstone
	for _, o := range outs[:len(outs)-1] {
		if o.Key != node {
			t.Errorf("%s keyed %q, want the node id", o.Topic, o.Key)
		}
	}
	wantOutputs(t, outs, "liveness_expired", want...)
	// Consul's catalog mode reports the node warning while it awaits its
	// ack and passing once ACTIVE.
	// The ack's register only moves the health: the orchestrator routes it
	// outside the attempt's aggregation.
	if v := strings.ReplaceAll(string(outs[7].Value), " ", ""); !strings.Contains(v, `"refresh":true`) || strings.Contains(string(outs[3].Value), `"refresh"`) {
		t.Errorf("refresh marks only the ack's register: %s / %s", outs[3].Value, outs[7].Value)
	}
	for i, h := range map[int]string{3: "warning", 7: "passing"} {
		if v := strings.ReplaceAll(string(outs[i].Value), " ", ""); !strings.Contains(v, `"health":"`+h+`"`) {
			t.Errorf("consul.register %d without health %s: %s", i, h, outs[i].Value)
		}
	}
	// The accepted event is the bare ModelNodeRegistrationAccepted: entity_id
	// and correlation_id at its top level, so a Python node's ack listener
	// matches it and acks with the introspection's correlation id.
	acc := outs[1].Value
	if _, err := envelope.Decode(acc); err == nil {
		t.Fatal("the accepted event is an envelope; it must be the bare model")
	}
	m, err := registration.DecodeRegistrationAccepted(acc)
	if err != nil {
		t.Fatalf("accepted event is not the bare model: %v", err)
	}
	if m.EntityID.String() != node || m.CorrelationID.String() != corr || m.AckDeadline.String() != "2026-03-02T14:05:37.500000Z" && m.AckDeadline.String() != "2026-03-02T14:05:37.5Z" {
		t.Fatalf("accepted event: %+v", m)
	}
	// Python's json.dumps form, as on the wire (the output line is compact
	// JSON; the record value itself keeps ", " and ": ").
	var top map[string]any
	json.Unmarshal(acc, &top)
	if top["entity_id"] != node || top["correlation_id"] != corr {
		t.Fatalf("accepted event top level: entity_id=%v correlation_id=%v", top["entity_id"], top["correlation_id"])
	}
	// Determinism: the same input yields the same bytes.
	again, _, _ := run(t, input)
	for i := range outs {
		if !bytes.Equal(outs[i].Value, again[i].Value) {
			t.Fatalf("output %d differs between two replays of the same input", i)
		}
	}
}

// A node that misses its accepted event: a tick before the first resend
// time re-emits nothing, a tick after it re-emits the accepted event (same
// correlation id and ack deadline, emitted at the tick, caused by it), and
// the ack that follows makes the node ACTIVE.
func TestReplayAcceptedResend(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { replayAcceptedResend(t, set) })
	}
}

func replayAcceptedResend(t *testing.T, set testkit.WireSet) {
	const tickID = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
	tick := func(now string) string {
		return fmt.Sprintf(`{"now":%q,"tick_id":%q,"sequence_number":42,"scheduled_at":%q,"correlation_id":"9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f","scheduler_id":"runtime-scheduler-default","tick_interval_ms":1000}`, now, tickID, now)
	}
	input := strings.Join([]string{
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:07.5Z", read(t, set, "introspection-effect.json")),
		line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:05:09Z", tick("2026-03-02T14:05:09Z")), // resend due after 14:05:09.5
		line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:05:10Z", tick("2026-03-02T14:05:10Z")),
		line("onex.cmd.platform.node-registration-acked.v1", "2026-03-02T14:05:10.5Z", read(t, set, "ack.json")),
		line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:05:20Z", tick("2026-03-02T14:05:20Z")), // acked: no more resends
	}, "\n")
	outs, stderr, skipped := run(t, input)
	if skipped != 0 || stderr != "" {
		t.Fatalf("skipped %d: %s", skipped, stderr)
	}
	want := []string{
		"event onex.evt.platform.node-registration-initiated.v1",
		"event onex.evt.platform.node-registration-accepted.v1",
		"intent postgres.upsert_registration",
		"intent consul.register",
		// tick 14:05:09: nothing; tick 14:05:10:
		"event onex.evt.platform.node-registration-accepted.v1",
		// ack:
		"event onex.evt.platform.node-registration-ack-received.v1",
		"event onex.evt.platform.node-became-active.v1",
		"intent postgres.update_registration",
		"intent consul.register",
	}
	want = append(want, topicsOut(t, set)...)
	wantOutputs(t, outs, "active", want...)
	first, err := registration.DecodeRegistrationAccepted(outs[1].Value)
	if err != nil {
		t.Fatal(err)
	}
	again, err := registration.DecodeRegistrationAccepted(outs[4].Value)
	if err != nil {
		t.Fatal(err)
	}
	if again.EntityID != first.EntityID || again.CorrelationID != first.CorrelationID || !again.AckDeadline.Equal(first.AckDeadline.Time) {
		t.Errorf("resend %+v differs from the original %+v in its attempt", again, first)
	}
	if again.EmittedAt.String() != "2026-03-02T14:05:10Z" || again.CausationID.String() != tickID {
		t.Errorf("resend emitted at %s caused by %s, want the tick's now and id", again.EmittedAt, again.CausationID)
	}
}

func TestReplayReportsBadLines(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { replayReportsBadLines(t, set) })
	}
}

func replayReportsBadLines(t *testing.T, set testkit.WireSet) {
	input := strings.Join([]string{
		`not json`,
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:07Z", `{"payload": {"node_id": "x"}}`),
		line("onex.evt.platform.unknown-topic.v1", "2026-03-02T14:05:07Z", `{}`),
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:07.5Z", read(t, set, "introspection-effect.json")),
	}, "\n")
	outs, stderr, skipped := run(t, input)
	if skipped != 3 {
		t.Fatalf("skipped = %d, want 3; stderr:\n%s", skipped, stderr)
	}
	for _, n := range []string{"line 1:", "line 2:", "line 3:"} {
		if !strings.Contains(stderr, n) {
			t.Errorf("stderr does not report %q:\n%s", n, stderr)
		}
	}
	if !strings.Contains(stderr, "node_id") {
		t.Errorf("the bad payload's field is not named:\n%s", stderr)
	}
	if final := outs[len(outs)-1].FinalStates; final[node] != "awaiting_ack" {
		t.Fatalf("good line after bad ones not processed: %v", final)
	}
}

// A runtime_host introspection (valid, not projectable) is answered with
// the rejected event and no intent; the same introspection again gets the
// same answer (same envelope id and payload but for emitted_at); the
// node's heartbeat, ack and a tick change nothing; an introspection of a
// projectable type then registers it (rejected is retriable).
func TestReplayRuntimeHostRejected(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { replayRuntimeHostRejected(t, set) })
	}
}

func replayRuntimeHostRejected(t *testing.T, set testkit.WireSet) {
	host := func(name string) string {
		v := read(t, set, name)
		if !strings.Contains(v, `"node_type": "effect"`) {
			t.Fatalf("%s %s has no effect node_type", set.Name, name)
		}
		return strings.Replace(v, `"node_type": "effect"`, `"node_type": "runtime_host"`, 1)
	}
	tick := `{"now":"2026-03-02T14:05:40Z","tick_id":"5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b","sequence_number":42,"scheduled_at":"2026-03-02T14:05:40Z","correlation_id":"9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f","scheduler_id":"runtime-scheduler-default","tick_interval_ms":1000}`
	input := strings.Join([]string{
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:07.5Z", host("introspection-effect.json")),
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:08Z", host("introspection-effect.json")), // duplicate
		line("onex.evt.platform.node-heartbeat.v1", "2026-03-02T14:05:09Z", host("heartbeat.json")),
		line("onex.cmd.platform.node-registration-acked.v1", "2026-03-02T14:05:09.5Z", read(t, set, "ack.json")),
		line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:05:40Z", tick),
		line("onex.evt.platform.node-introspection.v1", "2026-03-02T14:05:45Z", read(t, set, "introspection-effect.json")),
	}, "\n")
	outs, stderr, skipped := run(t, input)
	if skipped != 0 || stderr != "" {
		t.Fatalf("skipped %d: %s", skipped, stderr)
	}
	want := []string{
		"event onex.evt.platform.node-registration-rejected.v1",
		"event onex.evt.platform.node-registration-rejected.v1", // the duplicate
		// heartbeat, ack, tick: nothing; the effect introspection:
		"event onex.evt.platform.node-registration-initiated.v1",
		"event onex.evt.platform.node-registration-accepted.v1",
		"intent postgres.upsert_registration",
		"intent consul.register",
	}
	for _, o := range outs[:len(outs)-1] {
		if o.Key != node {
			t.Errorf("%s keyed %q, want the node id", o.Topic, o.Key)
		}
	}
	wantOutputs(t, outs, "awaiting_ack", want...)
	var rej [2]*registration.RegistrationRejected
	var envs [2]*envelope.Envelope
	for i := range rej {
		env, err := envelope.Decode(outs[i].Value)
		if err != nil {
			t.Fatalf("rejected event %d is not an envelope: %v", i, err)
		}
		if rej[i], err = envelope.DecodePayload(env, registration.DecodeRegistrationRejected); err != nil {
			t.Fatal(err)
		}
		envs[i] = env
	}
	if rej[0].EntityID.String() != node || rej[0].RejectionReason != decide.RejectionReason("runtime_host") ||
		!rej[0].EmittedAt.Equal(time.Date(2026, 3, 2, 14, 5, 7, 5e8, time.UTC)) || !rej[1].EmittedAt.Equal(time.Date(2026, 3, 2, 14, 5, 8, 0, time.UTC)) {
		t.Errorf("rejected %+v", rej[0])
	}
	if envs[0].EnvelopeID != envs[1].EnvelopeID || rej[0].CorrelationID != rej[1].CorrelationID || rej[0].CausationID != rej[1].CausationID ||
		rej[0].RejectionReason != rej[1].RejectionReason {
		t.Errorf("the duplicate was answered differently: %+v %+v", rej[0], rej[1])
	}
}
