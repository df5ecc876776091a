package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
)

// logLines decodes the JSON log lines in b.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// Unknown fields of accepted records are counted per topic and field
// (array indices dropped), and logged at WARN once per (topic, node type,
// field) per hour, with correlation_id, node_id, topic and field; the
// records are forwarded, in a batch or alone.
func TestHandlerCountsAndLogsUnknownFields(t *testing.T) {
	s, err := fixtures.LoadGoldenSet()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx := observability.WithLogger(context.Background(), observability.NewLogger(&logs, "test", "info"))
	m := NewMetrics(nil)
	h := NewHandler(map[string]string{"hb": topics.NodeHeartbeat, "intro": topics.NodeIntrospection}, "reducer-input", "test", DefaultLimits(), m)
	// handle hands msgs to the handler as the runner does: a batch of one
	// with its message's context.
	handle := func(msgs ...*bus.Message) int {
		t.Helper()
		hctx := ctx
		if len(msgs) == 1 {
			hctx = bus.MessageContext(ctx, msgs[0])
		}
		out, err := h.Handle(hctx, msgs)
		if err != nil || out.Outcomes != nil {
			t.Fatalf("Handle: %v, outcomes %v", err, out.Outcomes)
		}
		return len(out.Records)
	}
	clock := now
	h.now = func() time.Time { return clock }

	withField := func(r fixtures.Record, member string) []byte {
		return bytes.Replace(r.Value, []byte(`{"payload": {`), []byte(`{"payload": {`+member+`, `), 1)
	}
	msg := func(topic string, v []byte) *bus.Message {
		return &bus.Message{Topic: topic, Value: v, CorrelationID: mustCorrelation(t, v)}
	}
	// Three heartbeats through a batch, two with the unknown field; one
	// introspection with it twice in an array, alone through Handle.
	batch := []*bus.Message{
		msg("hb", withField(s.Heartbeat(), `"gc": 1`)),
		msg("hb", s.Heartbeat().Value),
		msg("hb", withField(s.Heartbeat(), `"gc": 2`)),
	}
	if n := handle(batch...); n != 3 {
		t.Fatalf("%d records for the batch, want 3", n)
	}
	intro := msg("intro", withField(s.Introspection(), `"plugins": [{"n": 1}, {"n": 2}], "plugins_meta": {}`))
	intro.Value = bytes.Replace(intro.Value, []byte(`"plugins": [{"n": 1}, {"n": 2}]`), []byte(`"plugins": [{"n": 1, "x": 1}, {"n": 2, "x": 2}]`), 1)
	if n := handle(intro); n != 1 {
		t.Fatalf("%d records for the introspection, want 1", n)
	}
	count := func(topic, field string) float64 {
		return testutil.ToFloat64(m.UnknownFields.WithLabelValues(topic, field))
	}
	if c := count(topics.NodeHeartbeat, "payload.gc"); c != 2 {
		t.Errorf("payload.gc counted %v times, want 2", c)
	}
	if c := count(topics.NodeIntrospection, "payload.plugins"); c != 1 {
		t.Errorf("payload.plugins counted %v, want 1", c)
	}
	if n := testutil.CollectAndCount(m.UnknownFields); n != 3 {
		t.Errorf("%d series, want 3 (payload.gc, payload.plugins, payload.plugins_meta)", n)
	}
	warns := logLines(t, &logs)
	var fields []string
	for _, w := range warns {
		if w["level"] != "WARN" {
			continue
		}
		fields = append(fields, fmt.Sprint(w["topic"], " ", w["node_type"], " ", w["field"]))
		for _, k := range []string{"correlation_id", "node_id", "topic", "field", "path"} {
			if s, _ := w[k].(string); s == "" {
				t.Errorf("WARN without %s: %v", k, w)
			}
		}
	}
	want := []string{topics.NodeHeartbeat + " effect payload.gc", topics.NodeIntrospection + " effect payload.plugins", topics.NodeIntrospection + " effect payload.plugins_meta"}
	if !reflect.DeepEqual(fields, want) {
		t.Fatalf("WARN lines %v, want %v", fields, want)
	}

	// Within the hour: counted, not logged again; an hour later: logged.
	logs.Reset()
	clock = clock.Add(59 * time.Minute)
	handle(msg("hb", withField(s.Heartbeat(), `"gc": 3`)))
	if c := count(topics.NodeHeartbeat, "payload.gc"); c != 3 || strings.Contains(logs.String(), "WARN") {
		t.Errorf("count %v, logs %s", c, logs.String())
	}
	clock = clock.Add(time.Minute)
	handle(msg("hb", withField(s.Heartbeat(), `"gc": 4`)))
	if !strings.Contains(logs.String(), `"field":"payload.gc"`) {
		t.Errorf("not logged again after an hour: %s", logs.String())
	}
}

func mustCorrelation(t *testing.T, v []byte) [16]byte {
	t.Helper()
	id, _ := envelope.PeekCorrelationID(v)
	return id
}

// At most MaxUnknownFieldsPerTopic field series per topic; the rest count
// as "other" (and are logged as one field per hour).
func TestUnknownFieldLabelsBounded(t *testing.T) {
	m := NewMetrics(nil)
	var logs bytes.Buffer
	ctx := observability.WithLogger(context.Background(), slog.New(slog.NewJSONHandler(&logs, nil)))
	u := newUnknownFields(m.UnknownFields, func() time.Time { return now })
	for i := range MaxUnknownFieldsPerTopic + 50 {
		u.observe(ctx, topics.NodeHeartbeat, Accepted{NodeType: registration.NodeKindEffect,
			Unknown: []pyjson.Unknown{{Path: fmt.Sprintf("payload.f%d", i), Value: []byte("1")}}})
	}
	u.observe(ctx, topics.NodeIntrospection, Accepted{Unknown: []pyjson.Unknown{{Path: "payload.f0", Value: []byte("1")}}})
	if n := testutil.CollectAndCount(m.UnknownFields); n != MaxUnknownFieldsPerTopic+2 {
		t.Errorf("%d series, want %d", n, MaxUnknownFieldsPerTopic+2)
	}
	if c := testutil.ToFloat64(m.UnknownFields.WithLabelValues(topics.NodeHeartbeat, UnknownFieldOther)); c != 50 {
		t.Errorf("other = %v, want 50", c)
	}
	if n := strings.Count(logs.String(), "WARN"); n != MaxUnknownFieldsPerTopic+2 {
		t.Errorf("%d WARN lines, want %d", n, MaxUnknownFieldsPerTopic+2)
	}
}

func TestFieldLabel(t *testing.T) {
	for in, want := range map[string]string{
		"payload.flow_window":                      "payload.flow_window",
		"payload.event_bus.publish_topics[12].qos": "payload.event_bus.publish_topics[].qos",
		"payload.a[0][3].b":                        "payload.a[][].b",
		"payload.x" + strings.Repeat("é", 100):     "payload.x" + strings.Repeat("é", 58) + "…",
		"payload.flag_metadata.my[flag].x":         "payload.flag_metadata.my[flag].x",
		"metadata.\xff":                            "metadata.\uFFFD",
	} {
		if got := FieldLabel(in); got != want || len(got) > maxFieldLabel {
			t.Errorf("FieldLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTolerantValidate: for any record, the tolerant ingress accepts
// whatever the strict one (before unknown fields were accepted) accepts,
// with the same result and the same decoded values; what the strict one
// rejects for any reason but an unknown field, the tolerant one rejects
// with the same reason and error; and the tolerant one never rejects a
// record for an unknown field.
func FuzzTolerantValidate(f *testing.F) {
	for _, s := range sets(f) {
		for _, v := range [][]byte{s.IntrospectionRaw, s.HeartbeatRaw, s.AckRaw} {
			f.Add(uint8(0), v)
			f.Add(uint8(1), v)
			f.Add(uint8(2), v)
		}
		for _, k := range fixtures.UnknownFieldKinds() {
			r := k.Make(s)
			f.Add(topicIndex(r.Topic), r.Value)
		}
		for _, k := range fixtures.MalformedKinds(2 << 10) {
			r := k.Make(s)
			f.Add(topicIndex(r.Topic), r.Value)
		}
	}
	nodeTopics := []string{topics.NodeIntrospection, topics.NodeHeartbeat, topics.NodeRegistrationAcked}
	lim := Limits{MaxBytes: 1 << 20, MaxFutureSkew: 5 * time.Minute}
	f.Fuzz(func(t *testing.T, ti uint8, value []byte) {
		topic := nodeTopics[int(ti)%len(nodeTopics)]
		sacc, sreason, serr := validate(topic, value, now, lim, false)
		tacc, treason, terr := validate(topic, value, now, lim, true)
		if terr != nil && strings.Contains(terr.Error(), "extra fields not permitted") {
			t.Fatalf("tolerant ingress rejected an unknown field: %v", terr)
		}
		switch {
		case serr == nil:
			if terr != nil {
				t.Fatalf("strict accepted, tolerant rejected (%s): %v", treason, terr)
			}
			tacc.Unknown = nil
			if !reflect.DeepEqual(sacc, tacc) {
				t.Fatalf("accepted differently: %+v vs %+v", sacc, tacc)
			}
			sameValues(t, topic, value)
		case strings.Contains(serr.Error(), "extra fields not permitted"):
			// Whatever the tolerant one decides, it decides on other grounds.
		default:
			if terr == nil || treason != sreason || terr.Error() != serr.Error() {
				t.Fatalf("strict rejected (%s: %v), tolerant %s: %v", sreason, serr, treason, terr)
			}
		}
	})
}

func topicIndex(topic string) uint8 {
	switch topic {
	case topics.NodeHeartbeat:
		return 1
	case topics.NodeRegistrationAcked:
		return 2
	}
	return 0
}

// sameValues checks that the strict and the tolerant decoders give the
// same envelope and payload for a record both accept.
func sameValues(t *testing.T, topic string, value []byte) {
	t.Helper()
	se, err1 := envelope.Decode(value)
	te, _, err2 := envelope.DecodeTolerant(value)
	if err1 != nil || err2 != nil {
		t.Fatalf("envelope: %v %v", err1, err2)
	}
	te.EnvelopeID, te.EnvelopeTimestamp = se.EnvelopeID, se.EnvelopeTimestamp // defaults drawn at decode time
	if !reflect.DeepEqual(se, te) {
		t.Fatalf("envelopes differ:\n%+v\n%+v", se, te)
	}
	var sv, tv any
	switch topic {
	case topics.NodeIntrospection:
		s, _ := registration.DecodeIntrospectionEvent(se.Payload)
		v, _, _ := registration.DecodeIntrospectionEventTolerant(se.Payload)
		v.Extras = nil
		alignCapturedAt(s, v)
		sv, tv = s, v
	case topics.NodeHeartbeat:
		sv, _ = registration.DecodeHeartbeatEvent(se.Payload)
		tv, _, _ = registration.DecodeHeartbeatEventTolerant(se.Payload)
	default:
		s, _ := registration.DecodeRegistrationAcked(se.Payload)
		v, _, _ := registration.DecodeRegistrationAckedTolerant(se.Payload)
		v.CommandID = s.CommandID // a default drawn at decode time
		sv, tv = s, v
	}
	if !reflect.DeepEqual(sv, tv) {
		t.Fatalf("payloads differ:\n%+v\n%+v", sv, tv)
	}
}

// alignCapturedAt copies the one introspection default drawn at decode
// time (performance_metrics.captured_at).
func alignCapturedAt(s, v *registration.IntrospectionEvent) {
	if s.PerformanceMetrics != nil && v.PerformanceMetrics != nil {
		v.PerformanceMetrics.CapturedAt = s.PerformanceMetrics.CapturedAt
	}
}
