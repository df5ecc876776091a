package node

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// fixtureRecord is a NAME.record.json: topic, key and headers in order.
type fixtureRecord struct {
	Topic   string
	Key     *string
	Headers [][2]string
}

func loadRecord(t *testing.T, set testkit.WireSet, name string) fixtureRecord {
	t.Helper()
	raw := set.Read(t, name)
	var top struct {
		Topic   string          `json:"topic"`
		Key     *string         `json:"key"`
		Headers json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	rec := fixtureRecord{Topic: top.Topic, Key: top.Key}
	dec := json.NewDecoder(bytes.NewReader(top.Headers))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		k, _ := dec.Token()
		v, _ := dec.Token()
		rec.Headers = append(rec.Headers, [2]string{k.(string), v.(string)})
	}
	return rec
}

// sequence returns the values in order, one per call, failing the test if
// the encoder asks for more than the fixture has.
func sequence[T any](t *testing.T, what string, vals ...T) func() T {
	i := 0
	return func() T {
		if i >= len(vals) {
			t.Fatalf("encoder asked for more %s than the fixture has (%d)", what, len(vals))
		}
		i++
		return vals[i-1]
	}
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func headerValue(rec fixtureRecord, key string) string {
	for _, h := range rec.Headers {
		if h[0] == key {
			return h[1]
		}
	}
	return ""
}

// wantValue is the value the encoder must write for a recorded record: a
// current golden as it is, an older fixture in its current envelope form.
func wantValue(t *testing.T, set testkit.WireSet, name string) []byte {
	t.Helper()
	raw := bytes.TrimRight(set.Read(t, name), "\n")
	if set.Golden() {
		return raw
	}
	return currentEnvelopeForm(t, raw)
}

// checkRecord compares a record built by the encoder with a recorded one:
// value byte for byte (want), headers in order, and the key (Go nodes key
// by node id where the Python node sends none).
func checkRecord(t *testing.T, set testkit.WireSet, got Record, want []byte, recordName string, nodeID uuid.UUID) {
	t.Helper()
	if !bytes.Equal(got.Value, want) {
		t.Errorf("value differs from the %s record:\n got %s\nwant %s", set.Name, got.Value, want)
	}
	rec := loadRecord(t, set, recordName)
	if got.Topic != rec.Topic {
		t.Errorf("topic %q, want %q", got.Topic, rec.Topic)
	}
	if string(got.Key) != nodeID.String() {
		t.Errorf("key %q, want the node id %s", got.Key, nodeID)
	}
	if rec.Key != nil && *rec.Key != string(got.Key) {
		t.Errorf("key %q, fixture has %q", got.Key, *rec.Key)
	}
	var gotH [][2]string
	for _, h := range got.Headers {
		gotH = append(gotH, [2]string{string(h.Key), string(h.Value)})
	}
	if len(gotH) != len(rec.Headers) {
		t.Fatalf("headers %v, want %v", gotH, rec.Headers)
	}
	for i := range gotH {
		if gotH[i] != rec.Headers[i] {
			t.Errorf("header %d = %v, want %v", i, gotH[i], rec.Headers[i])
		}
	}
}

// currentEnvelopeForm is an older fixture (envelope 2.1.0) as the current
// Python package writes it, which the encoder follows: the envelope fields
// added since (parent_envelope_id, tenant_id, producer) null in their
// places, envelope_version 2.3.0, and a heartbeat's flow_window null.
func currentEnvelopeForm(t *testing.T, old []byte) []byte {
	t.Helper()
	s := string(old)
	insert := func(before, add string) {
		i := strings.LastIndex(s, before) // the envelope's keys follow the payload
		if i < 0 {
			t.Fatalf("fixture has no %q", before)
		}
		s = s[:i] + add + s[i:]
	}
	insert(`"source_tool": `, `"parent_envelope_id": null, `)
	insert(`"onex_version": `, `"tenant_id": null, "producer": null, `)
	s = strings.Replace(s, `"envelope_version": {"major": 2, "minor": 1,`, `"envelope_version": {"major": 2, "minor": 3,`, 1)
	if strings.Contains(s, `"uptime_seconds": `) {
		s = strings.Replace(s, `"correlation_id": `, `"flow_window": null, "correlation_id": `, 1)
	}
	return []byte(s)
}

func decodeFixtureEnvelope(t *testing.T, set testkit.WireSet, name string) *envelope.Envelope {
	t.Helper()
	env, err := envelope.Decode(set.Read(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// checkHeaderIdentity: the current package's headers carry the envelope's
// identity (header_identity_fields_from_envelope: message_id = envelope_id,
// correlation_id = the envelope's correlation_id). The older fixtures have
// unrelated header ids. The encoder takes both header ids from NewID, so
// the tests feed it the recorded ones.
func checkHeaderIdentity(t *testing.T, set testkit.WireSet, env *envelope.Envelope, rec fixtureRecord) {
	t.Helper()
	if !set.Golden() {
		return
	}
	if headerValue(rec, "message_id") != env.EnvelopeID.String() || env.CorrelationID == nil || headerValue(rec, "correlation_id") != env.CorrelationID.String() {
		t.Errorf("current headers message_id %s correlation_id %s, envelope %s %v", headerValue(rec, "message_id"), headerValue(rec, "correlation_id"), env.EnvelopeID, env.CorrelationID)
	}
}

// The encoder's records match the Python node's: the current package's
// (golden) and the older fixtures' (in their current envelope form).
func TestIntrospectionMatchesPythonFixture(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { checkIntrospection(t, set) })
	}
}

func checkIntrospection(t *testing.T, set testkit.WireSet) {
	env := decodeFixtureEnvelope(t, set, "introspection-effect.json")
	want, err := envelope.DecodePayload(env, registration.DecodeIntrospectionEvent)
	if err != nil {
		t.Fatal(err)
	}
	if want.NodeName == nil {
		t.Fatal("recorded introspection has no node_name")
	}
	rec := loadRecord(t, set, "introspection-effect.record.json")
	checkHeaderIdentity(t, set, env, rec)
	id := Identity{
		NodeID:               want.NodeID,
		Name:                 *want.NodeName,
		Type:                 want.NodeType,
		Version:              want.NodeVersion,
		Endpoints:            want.Endpoints,
		Capabilities:         want.DeclaredCapabilities,
		ContractCapabilities: want.ContractCapabilities,
		Metadata:             want.Metadata,
		EventBus:             want.EventBus,
		Customize: func(ev *registration.IntrospectionEvent) {
			ev.DiscoveredCapabilities = want.DiscoveredCapabilities
			ev.PerformanceMetrics = want.PerformanceMetrics
			ev.CurrentState = want.CurrentState
		},
	}
	if id.NodeID != uuid.MustParse("3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18") || id.Type != registration.NodeKindEffect || len(id.Endpoints["health"]) == 0 {
		t.Errorf("recorded identity %+v", id)
	}
	ev := id.Introspection(registration.ReasonStartup, want.CorrelationID, want.Timestamp.Time)
	enc := &Encoder{
		Source: "local",
		Now:    sequence(t, "times", env.EnvelopeTimestamp.Time, ts(t, headerValue(rec, "timestamp"))),
		NewID: sequence(t, "ids", env.EnvelopeID,
			uuid.MustParse(headerValue(rec, "correlation_id")), uuid.MustParse(headerValue(rec, "message_id"))),
	}
	got, err := enc.Introspection(ev)
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, set, got, wantValue(t, set, "introspection-effect.json"), "introspection-effect.record.json", id.NodeID)
	if got.CorrelationID != want.CorrelationID {
		t.Errorf("record correlation %s, want the payload's %s", got.CorrelationID, want.CorrelationID)
	}
}

var uptimeRE = regexp.MustCompile(`"uptime_seconds": ([0-9.eE+-]+)`)

func TestHeartbeatMatchesPythonFixture(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { checkHeartbeat(t, set) })
	}
}

func checkHeartbeat(t *testing.T, set testkit.WireSet) {
	env := decodeFixtureEnvelope(t, set, "heartbeat.json")
	want, err := envelope.DecodePayload(env, registration.DecodeHeartbeatEvent)
	if err != nil {
		t.Fatal(err)
	}
	rec := loadRecord(t, set, "heartbeat.record.json")
	checkHeaderIdentity(t, set, env, rec)
	id := Identity{NodeID: want.NodeID, Type: want.NodeType, Version: want.NodeVersion}
	enc := &Encoder{
		Source: "local",
		Now:    sequence(t, "times", want.Timestamp.Time, env.EnvelopeTimestamp.Time, ts(t, headerValue(rec, "timestamp"))),
		NewID: sequence(t, "ids", *want.CorrelationID, env.EnvelopeID,
			uuid.MustParse(headerValue(rec, "correlation_id")), uuid.MustParse(headerValue(rec, "message_id"))),
	}
	uptime := time.Duration(want.UptimeSeconds * float64(time.Second))
	got, err := enc.Heartbeat(&id, uptime, Load{MemoryUsageMB: want.MemoryUsageMB, CPUUsagePercent: want.CPUUsagePercent})
	if err != nil {
		t.Fatal(err)
	}
	// Uptime is a time.Duration (nanoseconds) in Go and a float difference
	// of time.time() readings in Python (30.410550832748413 in the current
	// golden): the encoder writes the Duration's seconds, within a
	// nanosecond of the recorded value; every other byte is the record's.
	wantV := wantValue(t, set, "heartbeat.json")
	gm, wm := uptimeRE.FindSubmatch(got.Value), uptimeRE.FindSubmatch(wantV)
	if gm == nil || wm == nil {
		t.Fatalf("no uptime_seconds in %s or %s", got.Value, wantV)
	}
	gu, err1 := strconv.ParseFloat(string(gm[1]), 64)
	wu, err2 := strconv.ParseFloat(string(wm[1]), 64)
	if err1 != nil || err2 != nil || math.Abs(gu-wu) > 1e-9 {
		t.Errorf("uptime_seconds %s, recorded %s", gm[1], wm[1])
	}
	wantV = bytes.Replace(wantV, wm[0], gm[0], 1)
	checkRecord(t, set, got, wantV, "heartbeat.record.json", id.NodeID)
}

func TestAckMatchesPythonFixture(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { checkAck(t, set) })
	}
}

func checkAck(t *testing.T, set testkit.WireSet) {
	env := decodeFixtureEnvelope(t, set, "ack.json")
	want, err := envelope.DecodePayload(env, registration.DecodeRegistrationAcked)
	if err != nil {
		t.Fatal(err)
	}
	rec := loadRecord(t, set, "ack.record.json")
	checkHeaderIdentity(t, set, env, rec)
	enc := &Encoder{
		Source: "local",
		Now:    sequence(t, "times", want.Timestamp.Time, env.EnvelopeTimestamp.Time, ts(t, headerValue(rec, "timestamp"))),
		NewID: sequence(t, "ids", want.CommandID, env.EnvelopeID,
			uuid.MustParse(headerValue(rec, "correlation_id")), uuid.MustParse(headerValue(rec, "message_id"))),
	}
	got, err := enc.Ack(want.NodeID, want.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, set, got, wantValue(t, set, "ack.json"), "ack.record.json", want.NodeID)
}

func TestIdentityValidate(t *testing.T) {
	good := Identity{NodeID: uuid.New(), Type: registration.NodeKindCompute,
		Endpoints: map[string]string{"health": "http://h:1/healthz"}}
	cases := []struct {
		name    string
		edit    func(*Identity)
		wantErr string
	}{
		{"valid", func(*Identity) {}, ""},
		{"no id", func(i *Identity) { i.NodeID = uuid.Nil }, "no node id"},
		{"bad type", func(i *Identity) { i.Type = "widget" }, "node_type"},
		{"endpoint without host", func(i *Identity) { i.Endpoints = map[string]string{"health": "/healthz"} }, "endpoints"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := good
			c.edit(&id)
			err := id.Validate()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
			}
		})
	}
}

func TestIntrospectionDefaults(t *testing.T) {
	id := Identity{NodeID: uuid.New(), Type: registration.NodeKindReducer, Role: "registry"}
	ev := id.Introspection(registration.ReasonRequest, uuid.New(), time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600)))
	if ev.NodeVersion.String() != "1.0.0" {
		t.Errorf("version %s, want the Python default 1.0.0", ev.NodeVersion)
	}
	if ev.NodeName != nil {
		t.Errorf("node_name %q, want null for an unnamed node", *ev.NodeName)
	}
	if ev.NodeRole == nil || *ev.NodeRole != "registry" {
		t.Errorf("node_role %v", ev.NodeRole)
	}
	if ev.Timestamp.Location() != time.UTC || ev.Timestamp.Nanosecond()%1000 != 0 {
		t.Errorf("timestamp %v, want UTC microseconds", ev.Timestamp.Time)
	}
	if ev.Endpoints == nil {
		t.Error("endpoints nil, want {}")
	}
}

func TestLifecycleIDs(t *testing.T) {
	node := uuid.MustParse("3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18")
	corr := uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d")
	cases := []struct {
		name   string
		value  string
		ok     bool
		wantCo uuid.UUID
	}{
		// The accepted event as the reducer publishes it: the bare
		// ModelNodeRegistrationAccepted, json.dumps style.
		{"bare accepted event", `{"entity_id": "` + node.String() + `", "node_id": "` + node.String() + `", "correlation_id": "` + corr.String() +
			`", "causation_id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", "emitted_at": "2026-03-02T14:05:07.401122Z", "ack_deadline": "2026-03-02T14:05:37Z"}`, true, corr},
		{"accepted with top-level entity_id", `{"payload":{"node_id":"00000000-0000-4000-8000-000000000000"},"entity_id":"` + node.String() + `","correlation_id":"` + corr.String() + `"}`, true, corr},
		{"envelope payload node_id", `{"payload":{"node_id":"` + node.String() + `"},"correlation_id":"` + corr.String() + `"}`, true, corr},
		{"bare liveness-expired variant", `{"node_id":"` + node.String() + `","correlation_id":"` + corr.String() + `","detected_at":"2026-03-02T14:05:07Z"}`, true, corr},
		{"no correlation", `{"node_id":"` + node.String() + `"}`, true, uuid.Nil},
		{"not a uuid", `{"entity_id":"node-1"}`, false, uuid.Nil},
		{"no id at all", `{"payload":{}}`, false, uuid.Nil},
		{"garbage", `\x00{`, false, uuid.Nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, co, ok := lifecycleIDs([]byte(c.value))
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if ok && (id != node || co != c.wantCo) {
				t.Fatalf("got %s %s", id, co)
			}
		})
	}
}

// The registry publishes an attempt's accepted event until it has the ack,
// so a node sees copies: one of the attempt it acked keeps its status; the
// first one, and any of another attempt, moves it to accepted.
func TestResentAccepted(t *testing.T) {
	attempt, other := uuid.New(), uuid.New()
	for _, c := range []struct {
		status Status
		acked  uuid.UUID
		corr   uuid.UUID
		again  bool
	}{
		{StatusIntroducing, uuid.Nil, attempt, false}, // the first copy
		{StatusAccepted, uuid.Nil, attempt, false},    // not acked yet (never-ack node, or a failed publish)
		{StatusAcked, attempt, attempt, true},         // a copy crossed the ack
		{StatusActive, attempt, attempt, true},        // a late copy after became-active
		{StatusActive, attempt, other, false},         // a new attempt
		{StatusTimedOut, attempt, attempt, false},     // the registry gave up on it meanwhile
		{StatusExpired, attempt, other, false},
		{StatusActive, uuid.Nil, uuid.Nil, false}, // no correlation id at all
	} {
		if got := resentAccepted(c.status, c.acked, c.corr); got != c.again {
			t.Errorf("resentAccepted(%s, acked %v, corr %v) = %v, want %v", c.status, c.acked == attempt, c.corr == attempt, got, c.again)
		}
	}
}

func FuzzLifecycleIDs(f *testing.F) {
	f.Add([]byte(`{"entity_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18","correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d"}`))
	f.Add([]byte(`{"payload":{"node_id":"3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, _, ok := lifecycleIDs(b)
		if ok && id == uuid.Nil && !bytes.Contains(b, []byte("00000000-0000-0000-0000-000000000000")) {
			t.Fatalf("ok with nil id for %q", b)
		}
	})
}
