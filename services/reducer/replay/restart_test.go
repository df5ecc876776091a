package replay

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// introspectionAs is set's recorded introspection of the effect node with
// its payload's reason and timestamp replaced, and whatever change makes
// to the payload (a restart's new version, …); the payload's and the
// envelope's correlation ids are derived from the timestamp, so each
// introspection is another one.
func introspectionAs(t *testing.T, set testkit.WireSet, reason, ts string, change func(p map[string]any)) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(read(t, set, "introspection-effect.json")))
	dec.UseNumber() // floats stay as Python wrote them (0.0)
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	p := v
	if inner, ok := v["payload"].(map[string]any); ok {
		p = inner
	}
	corr := "dbf31e21-2ddb-4a1c-b618-" + strings.NewReplacer("-", "", ":", "", ".", "", "T", "", "Z", "").Replace(ts)[2:14]
	p["reason"], p["timestamp"], p["correlation_id"] = reason, ts, corr
	if _, ok := v["payload"]; ok {
		v["correlation_id"] = corr
	}
	if change != nil {
		change(p)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

func version(minor int) func(p map[string]any) {
	return func(p map[string]any) {
		p["node_version"] = map[string]any{"major": 1, "minor": minor, "patch": 0, "prerelease": nil, "build": nil}
	}
}

func kindsOf(outs []out) []string {
	var got []string
	for _, o := range outs[:len(outs)-1] {
		if o.Kind == "intent" {
			got = append(got, "intent "+o.IntentType)
		} else {
			got = append(got, o.Kind+" "+o.Topic)
		}
	}
	return got
}

func wantOutputs(t *testing.T, outs []out, final string, want ...string) {
	t.Helper()
	if got := kindsOf(outs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("outputs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f := outs[len(outs)-1].FinalStates; f[node] != final {
		t.Fatalf("final states %v, want %s", f, final)
	}
}

const (
	topicIntro = "onex.evt.platform.node-introspection.v1"
	topicAck   = "onex.cmd.platform.node-registration-acked.v1"
	registered = "event onex.evt.platform.node-registration-initiated.v1\n" +
		"event onex.evt.platform.node-registration-accepted.v1\n" +
		"intent postgres.upsert_registration\n" +
		"intent consul.register\n" +
		"event onex.evt.platform.node-registration-ack-received.v1\n" +
		"event onex.evt.platform.node-became-active.v1\n" +
		"intent postgres.update_registration\n" +
		"intent consul.register"
	topicNodeTopics = "onex.snapshot.platform.node-topics.v1"
)

// topicsOut is the node-topics output of a decision that changes the
// node's entry in the topic catalog's view, for a set whose effect node
// declares topics (the spec's fixture does, the package's own golden
// record declares none): one record, or none.
func topicsOut(t *testing.T, set testkit.WireSet) []string {
	t.Helper()
	if strings.Contains(read(t, set, "introspection-effect.json"), `"subscribe_topics": [{`) {
		return []string{"topics " + topicNodeTopics}
	}
	return nil
}

// registeredOf is the outputs of the node's registration (activeThen).
func registeredOf(t *testing.T, set testkit.WireSet) []string {
	return append(strings.Split(registered, "\n"), topicsOut(t, set)...)
}

// activeThen replays the node's registration (startup at 14:05:07, ack)
// followed by lines.
func activeThen(t *testing.T, set testkit.WireSet, lines ...string) []out {
	t.Helper()
	input := append([]string{
		line(topicIntro, "2026-03-02T14:05:07.5Z", introspectionAs(t, set, "startup", "2026-03-02T14:05:07.413015Z", nil)),
		line(topicAck, "2026-03-02T14:05:08Z", read(t, set, "ack.json")),
	}, lines...)
	outs, stderr, skipped := run(t, strings.Join(input, "\n"))
	if skipped != 0 || stderr != "" {
		t.Fatalf("skipped %d: %s", skipped, stderr)
	}
	return outs
}

// upsertOf is the record of the upsert intent at outs[i].
func upsertHas(t *testing.T, o out, parts ...string) {
	t.Helper()
	if o.IntentType != "postgres.upsert_registration" {
		t.Fatalf("output is %s %s, not an upsert", o.Kind, o.IntentType)
	}
	for _, p := range parts {
		if !strings.Contains(strings.ReplaceAll(string(o.Value), " ", ""), p) {
			t.Errorf("upsert lacks %s: %s", p, o.Value)
		}
	}
}

// A node restarted with a new version and endpoints is re-registered in
// place: upsert and Consul register, no new attempt; the same startup
// delivered again writes nothing.
func TestReplayRestartNewVersion(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			restart := introspectionAs(t, set, "startup", "2026-03-02T14:07:00Z", func(p map[string]any) {
				version(3)(p)
				p["endpoints"] = map[string]any{"health": "http://node-registry-effect-2:9000/health"}
			})
			outs := activeThen(t, set,
				line(topicIntro, "2026-03-02T14:07:00.5Z", restart),
				line(topicIntro, "2026-03-02T14:07:01Z", restart), // redelivered
			)
			wantOutputs(t, outs, "active", append(registeredOf(t, set),
				"intent postgres.upsert_registration", "intent consul.register")...)
			n := len(registeredOf(t, set))
			upsertHas(t, outs[n], `"node_version":"1.3.0"`, `"current_state":"active"`, `node-registry-effect-2:9000`)
			if v := string(outs[n+1].Value); !strings.Contains(v, "node-registry-effect-2") || !strings.Contains(v, "9000") {
				t.Errorf("consul register without the new endpoint: %s", v)
			}
		})
	}
}

// capability_change updates the node in place; the same again changes
// nothing.
func TestReplayCapabilityChange(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			changed := func(ts string) string {
				return introspectionAs(t, set, "capability_change", ts, func(p map[string]any) {
					p["declared_capabilities"].(map[string]any)["write"] = true
				})
			}
			outs := activeThen(t, set,
				line(topicIntro, "2026-03-02T14:06:00Z", changed("2026-03-02T14:06:00Z")),
				line(topicIntro, "2026-03-02T14:06:30Z", changed("2026-03-02T14:06:30Z")), // same data, later
			)
			wantOutputs(t, outs, "active", append(registeredOf(t, set),
				"intent postgres.upsert_registration", "intent consul.register")...)
			upsertHas(t, outs[len(registeredOf(t, set))], `"write":true`)
		})
	}
}

// A shutdown takes the node out of Consul at once (liveness_expired, a
// liveness-expired event, no later expiry); its next startup registers it
// again; a startup sent before the shutdown, delivered late, does not.
func TestReplayShutdownThenStartup(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			tick := `{"now":"2026-03-02T14:10:00Z","tick_id":"5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b","sequence_number":42,"scheduled_at":"2026-03-02T14:10:00Z","correlation_id":"9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f","scheduler_id":"runtime-scheduler-default","tick_interval_ms":1000}`
			outs := activeThen(t, set,
				line(topicIntro, "2026-03-02T14:06:00Z", introspectionAs(t, set, "shutdown", "2026-03-02T14:06:00Z", nil)),
				line(topicIntro, "2026-03-02T14:06:01Z", introspectionAs(t, set, "startup", "2026-03-02T14:05:30Z", nil)), // late
				line("onex.intent.platform.runtime-tick.v1", "2026-03-02T14:10:00Z", tick),
				line(topicIntro, "2026-03-02T14:11:00Z", introspectionAs(t, set, "startup", "2026-03-02T14:11:00Z", version(3))),
			)
			want := append(registeredOf(t, set),
				"event onex.evt.platform.node-liveness-expired.v1",
				"intent postgres.update_registration",
				"intent consul.deregister")
			want = append(want, topicsOut(t, set)...) // a tombstone: no longer ACTIVE
			// late startup, tick: nothing; the new startup:
			want = append(want,
				"event onex.evt.platform.node-registration-initiated.v1",
				"event onex.evt.platform.node-registration-accepted.v1",
				"intent postgres.upsert_registration",
				"intent consul.register")
			wantOutputs(t, outs, "awaiting_ack", want...)
			n := len(registeredOf(t, set))
			if v := strings.ReplaceAll(string(outs[n+1].Value), " ", ""); !strings.Contains(v, `"current_state":"liveness_expired"`) {
				t.Errorf("shutdown update: %s", outs[n+1].Value)
			}
			if len(topicsOut(t, set)) > 0 {
				if v := outs[n+3].Value; string(v) != "null" {
					t.Errorf("node-topics after the shutdown is %s, want a tombstone", v)
				}
				n++
			}
			upsertHas(t, outs[n+5], `"node_version":"1.3.0"`)
		})
	}
}

// An introspection sent before an applied update, delivered after it,
// never rolls the node back.
func TestReplayLateIntrospectionAfterUpdate(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			outs := activeThen(t, set,
				line(topicIntro, "2026-03-02T14:07:00Z", introspectionAs(t, set, "startup", "2026-03-02T14:07:00Z", version(4))),
				line(topicIntro, "2026-03-02T14:07:01Z", introspectionAs(t, set, "heartbeat", "2026-03-02T14:06:00Z", version(3))), // late
			)
			wantOutputs(t, outs, "active", append(registeredOf(t, set),
				"intent postgres.upsert_registration", "intent consul.register")...)
			upsertHas(t, outs[len(registeredOf(t, set))], `"node_version":"1.4.0"`)
		})
	}
}
