package replay

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

var (
	t0   = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	corr = uuid.MustParse("5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e")
)

// dead builds the DLQ record that pkg/dlq writes for a message consumed from
// topic that failed with err at when, and reads it back as an Entry at
// dlqTopic/0/offset.
func dead(t testing.TB, topic string, key, value []byte, err error, retry int, when time.Time, offset int64) *Entry {
	t.Helper()
	orig := &sarama.ConsumerMessage{Topic: topic, Partition: 2, Offset: 41, Key: key, Value: value}
	pm, berr := dlq.Build(orig, dlq.Failure{Err: err, CorrelationID: corr, RetryCount: retry}, "test", when)
	if berr != nil {
		t.Fatal(berr)
	}
	return entryOf(t, pm, offset)
}

func entryOf(t testing.TB, pm *sarama.ProducerMessage, offset int64) *Entry {
	t.Helper()
	m := &sarama.ConsumerMessage{Topic: pm.Topic, Partition: 0, Offset: offset}
	if pm.Key != nil {
		m.Key, _ = pm.Key.Encode()
	}
	m.Value, _ = pm.Value.Encode()
	for i := range pm.Headers {
		m.Headers = append(m.Headers, &pm.Headers[i])
	}
	return NewEntry(m)
}

var (
	connErr    = infraerr.New(infraerr.KindConnection, infraerr.Context{}, "consul refused", nil)
	contentErr = infraerr.Content("payload.node_id", "not a UUID")
)

func TestPosition(t *testing.T) {
	tests := []struct {
		in      string
		topic   string
		p       int32
		off     int64
		wantErr bool
	}{
		{"onex.dlq.omnibase-infra.events.v1/3/1042", "onex.dlq.omnibase-infra.events.v1", 3, 1042, false},
		{" t/0/0 ", "t", 0, 0, false},
		{"t/0", "", 0, 0, true},
		{"/1/2", "", 0, 0, true},
		{"t/-1/2", "", 0, 0, true},
		{"t/1/x", "", 0, 0, true},
		{"t/99999999999/2", "", 0, 0, true},
		{"a/b/1/2", "", 0, 0, true},
	}
	for _, tt := range tests {
		topic, p, off, err := ParsePosition(tt.in)
		if (err != nil) != tt.wantErr || topic != tt.topic || p != tt.p || off != tt.off {
			t.Errorf("ParsePosition(%q) = %q %d %d %v", tt.in, topic, p, off, err)
		}
		if err == nil && FormatPosition(topic, p, off) != strings.TrimSpace(tt.in) {
			t.Errorf("FormatPosition round trip of %q gave %q", tt.in, FormatPosition(topic, p, off))
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-02T14:05:07", time.Date(2026, 3, 2, 14, 5, 7, 0, time.UTC), true},
		{"2026-03-02T14:05:07Z", time.Date(2026, 3, 2, 14, 5, 7, 0, time.UTC), true},
		{"2026-03-02T14:05:07.401122+00:00", time.Date(2026, 3, 2, 14, 5, 7, 401122000, time.UTC), true},
		{"2026-03-02T16:05:07+02:00", time.Date(2026, 3, 2, 14, 5, 7, 0, time.UTC), true},
		{"2026-03-02 14:05:07", time.Date(2026, 3, 2, 14, 5, 7, 0, time.UTC), true},
		{"2026-03-02T14:05", time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC), true},
		{"2026-03-02", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{"2026-13-02", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err == nil && got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) location %v, want UTC", tt.in, got.Location())
		}
	}
}

func TestNewEntry(t *testing.T) {
	e := dead(t, "onex.evt.platform.node-introspection.v1", []byte("node-1"), []byte(`{"a": 1}`), connErr, 0, t0, 7)
	if e.Record == nil || e.DecodeErr != nil || e.Quarantined != nil {
		t.Fatalf("DLQ record did not decode: %v", e.DecodeErr)
	}
	if e.OriginalTopic() != "onex.evt.platform.node-introspection.v1" || e.ErrorType() != "InfraConnectionError" || e.CorrelationID() != corr.String() ||
		e.FailureClass() != "" || e.RetryCount() != 0 || e.Position() != "onex.dlq.omnibase-infra.events.v1/0/7" {
		t.Errorf("accessors: %s %s %s %q %d %s", e.OriginalTopic(), e.ErrorType(), e.CorrelationID(), e.FailureClass(), e.RetryCount(), e.Position())
	}
	if at, ok := e.FailedAt(); !ok || !at.Equal(t0) {
		t.Errorf("FailedAt = %v %v", at, ok)
	}
	mid, _ := e.Header("message_id")
	if e.ID().String() != mid {
		t.Errorf("ID %s, want the message_id header %s", e.ID(), mid)
	}

	qm, err := QuarantineMessage(e, "why", corr, "q.topic", t0)
	if err != nil {
		t.Fatal(err)
	}
	q := entryOf(t, qm, 3)
	if q.Quarantined == nil || q.Record != nil || q.OriginalTopic() != e.OriginalTopic() || q.CorrelationID() != corr.String() || q.ErrorType() != "InfraConnectionError" {
		t.Fatalf("quarantine record read back as %+v / %+v (%v)", q.Quarantined, q.Record, q.DecodeErr)
	}
	if at, ok := q.FailedAt(); !ok || !at.Equal(t0) {
		t.Errorf("quarantine FailedAt = %v %v", at, ok)
	}

	bad := []struct {
		name  string
		value []byte
		want  string
	}{
		{"empty", nil, "empty"},
		{"not utf8", []byte("\xff{}"), "UTF-8"},
		{"not json", []byte("hello"), "not a JSON object"},
		{"array", []byte("[1]"), "not a JSON object"},
		{"no original topic", []byte(`{"failure_reason": "x"}`), "original_topic"},
		{"quarantine without id", []byte(`{"quarantine_correlation_id": ""}`), "quarantine_correlation_id"},
	}
	for _, b := range bad {
		e := NewEntry(&sarama.ConsumerMessage{Topic: "d", Offset: 5, Value: b.value})
		if e.Record != nil || e.Quarantined != nil || e.DecodeErr == nil || !strings.Contains(e.DecodeErr.Error(), b.want) {
			t.Errorf("%s: record %v quarantined %v err %v; want error about %s", b.name, e.Record, e.Quarantined, e.DecodeErr, b.want)
		}
		if e.OriginalTopic() != "" || e.ErrorType() != "" || e.CorrelationID() != "" || e.RetryCount() != 0 {
			t.Errorf("%s: accessors of an undecodable record are not empty", b.name)
		}
		if _, ok := e.FailedAt(); ok {
			t.Errorf("%s: FailedAt of an undecodable record", b.name)
		}
		if e.ID() != uuid.NewSHA1(idNamespace, []byte("d/0/5")) {
			t.Errorf("%s: ID without a message_id header is not derived from the position", b.name)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	in := dead(t, "onex.evt.platform.node-introspection.v1", nil, []byte(`{}`), connErr, 0, t0, 1)
	undecodable := NewEntry(&sarama.ConsumerMessage{Topic: "d", Value: []byte("x")})
	badTime := dead(t, "onex.evt.platform.node-introspection.v1", nil, []byte(`{}`), connErr, 0, t0, 2)
	badTime.Record.FailureTimestamp = "not a time"
	tests := []struct {
		name string
		f    Filter
		e    *Entry
		want bool
		why  string
	}{
		{"empty selects all", Filter{}, in, true, ""},
		{"empty selects undecodable", Filter{}, undecodable, true, ""},
		{"any filter drops undecodable", Filter{ErrorTypes: []string{"x"}}, undecodable, false, "undecodable"},
		{"topic in", Filter{OriginalTopics: []string{"a", "onex.evt.platform.node-introspection.v1"}}, in, true, ""},
		{"topic out", Filter{OriginalTopics: []string{"onex.evt.platform.node-heartbeat.v1"}}, in, false, "original topic"},
		{"error type in", Filter{ErrorTypes: []string{"InfraConnectionError"}}, in, true, ""},
		{"error type is exact", Filter{ErrorTypes: []string{"infraconnectionerror"}}, in, false, "error type"},
		{"correlation any case", Filter{CorrelationIDs: []string{strings.ToUpper(corr.String())}}, in, true, ""},
		{"correlation out", Filter{CorrelationIDs: []string{uuid.NewString()}}, in, false, "correlation id"},
		{"window inclusive", Filter{Start: t0, End: t0}, in, true, ""},
		{"before start", Filter{Start: t0.Add(time.Second)}, in, false, "before start"},
		{"after end", Filter{End: t0.Add(-time.Second)}, in, false, "after end"},
		{"open start", Filter{End: t0.Add(time.Hour)}, in, true, ""},
		{"unparseable time outside any window", Filter{Start: t0.Add(-time.Hour)}, badTime, false, "does not parse"},
		{"unparseable time without window", Filter{ErrorTypes: []string{"InfraConnectionError"}}, badTime, true, ""},
		{"all must match", Filter{ErrorTypes: []string{"InfraConnectionError"}, OriginalTopics: []string{"x"}}, in, false, "original topic"},
	}
	for _, tt := range tests {
		got, why := tt.f.Match(tt.e)
		if got != tt.want || !strings.Contains(why, tt.why) || (tt.want && why != "") {
			t.Errorf("%s: Match = %v %q; want %v %q", tt.name, got, why, tt.want, tt.why)
		}
	}
	if err := (Filter{Start: t0, End: t0.Add(-time.Nanosecond)}).Validate(); err == nil {
		t.Error("end before start accepted")
	}
	if err := (Filter{Start: t0, End: t0}).Validate(); err != nil {
		t.Errorf("one-instant window rejected: %v", err)
	}
}

func TestDecide(t *testing.T) {
	topic := "onex.evt.platform.node-introspection.v1"
	window := Filter{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}
	rec := func(err error, retry int) *Entry { return dead(t, topic, nil, []byte(`{"x": 1}`), err, retry, t0, 1) }
	fallback := rec(connErr, 0)
	fallback.Record.SerializationFallback = true
	empty := dead(t, topic, nil, nil, connErr, 0, t0, 1)
	truncated := rec(connErr, 0)
	truncated.Headers = append(truncated.Headers, Header{Key: dlq.HeaderValueTruncated, Value: "1048000"})
	redacted := rec(connErr, 0)
	redacted.Record.RedactedFields = []string{"payload.password", "payload.api_key"}
	quarantined, _ := QuarantineMessage(rec(contentErr, 0), "r", corr, "q", t0)
	tests := []struct {
		name   string
		e      *Entry
		f      Filter
		max    int
		action Action
		reason string
	}{
		{"retriable infra replays", rec(connErr, 0), window, 5, ActionReplay, ""},
		{"timeout replays", rec(infraerr.New(infraerr.KindTimeout, infraerr.Context{}, "slow", nil), 4), window, 5, ActionReplay, ""},
		{"panic (RuntimeHostError) replays", rec(errors.New("boom"), 0), window, 5, ActionReplay, ""},
		{"retry count at max quarantines", rec(connErr, 5), window, 5, ActionQuarantine, "Exceeded max replay count: 5 >= 5"},
		{"retry count checked before type", rec(contentErr, 7), window, 5, ActionQuarantine, "Exceeded max replay count: 7 >= 5"},
		{"ValidationError quarantines", rec(contentErr, 0), window, 5, ActionQuarantine, "Non-retryable error type: ValidationError"},
		{"ProtocolConfigurationError quarantines", rec(infraerr.Configuration(infraerr.Context{}, "no dispatcher", nil), 0), window, 5, ActionQuarantine, "Non-retryable error type: ProtocolConfigurationError"},
		{"InfraAuthenticationError quarantines", rec(infraerr.New(infraerr.KindAuthentication, infraerr.Context{}, "403", nil), 0), window, 5, ActionQuarantine, "Non-retryable error type: InfraAuthenticationError"},
		{"SecretResolutionError quarantines", rec(infraerr.New(infraerr.KindSecretResolution, infraerr.Context{}, "missing", nil), 0), window, 5, ActionQuarantine, "Non-retryable error type: SecretResolutionError"},
		{"JSONDecodeError quarantines", rec(pyTyped{"JSONDecodeError"}, 0), window, 5, ActionQuarantine, "Non-retryable error type: JSONDecodeError"},
		{"outside the window is skipped, not quarantined", rec(contentErr, 9), Filter{Start: t0.Add(time.Minute)}, 5, ActionSkip, "outside the selection: before start"},
		{"other topic is skipped", rec(connErr, 0), Filter{OriginalTopics: []string{"x"}}, 5, ActionSkip, "outside the selection"},
		{"serialization fallback quarantines", fallback, Filter{}, 5, ActionQuarantine, "not preserved"},
		{"truncated original value quarantines", truncated, Filter{}, 5, ActionQuarantine, "truncated to fit the DLQ (it had 1048000 bytes)"},
		{"empty original value quarantines", empty, Filter{}, 5, ActionQuarantine, "Empty original value"},
		{"redacted original value quarantines", redacted, Filter{}, 5, ActionQuarantine, "redacted by the DLQ writer (payload.password, payload.api_key)"},
		{"quarantine record skipped", entryOf(t, quarantined, 1), Filter{}, 5, ActionSkip, "never replayed"},
		{"undecodable skipped", NewEntry(&sarama.ConsumerMessage{Topic: "d", Value: []byte("{")}), Filter{}, 5, ActionSkip, "not a DLQ record"},
		{"max 1 quarantines any count ≥ 1", rec(connErr, 1), Filter{}, 1, ActionQuarantine, "1 >= 1"},
	}
	for _, tt := range tests {
		d := Decide(tt.e, tt.f, tt.max)
		if d.Action != tt.action || !strings.Contains(d.Reason, tt.reason) || (tt.reason == "" && d.Reason != "") {
			t.Errorf("%s: Decide = %+v; want %s %q", tt.name, d, tt.action, tt.reason)
		}
	}
}

type pyTyped struct{ name string }

func (p pyTyped) Error() string      { return "bad" }
func (p pyTyped) PythonType() string { return p.name }

func headerList(pm *sarama.ProducerMessage) [][2]string {
	var out [][2]string
	for _, h := range pm.Headers {
		out = append(out, [2]string{string(h.Key), string(h.Value)})
	}
	return out
}

func TestReplayMessage(t *testing.T) {
	value := []byte(`{"envelope_id": "e", "payload": {"name": "caf` + "\u00e9" + `"}}`)
	e := dead(t, "onex.cmd.platform.node-registration-acked.v1", []byte("node-9"), value, connErr, 2, t0, 1042)
	run := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	now := time.Date(2026, 3, 3, 9, 0, 0, 250000000, time.UTC)
	pm, err := ReplayMessage(e, run, now)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := pm.Key.Encode()
	v, _ := pm.Value.Encode()
	if pm.Topic != "onex.cmd.platform.node-registration-acked.v1" || string(k) != "node-9" || string(v) != string(value) {
		t.Errorf("record %s %q %q", pm.Topic, k, v)
	}
	want := [][2]string{
		{"x-replay-count", "3"},
		{"x-replayed-at", "2026-03-03T09:00:00.250000+00:00"},
		{"x-replayed-by", "node_dlq_replay_effect"},
		{"x-original-dlq-offset", "1042"},
		{"x-replay-correlation-id", run.String()},
		{"correlation_id", corr.String()},
	}
	if got := headerList(pm); !equalHeaders(got, want) {
		t.Errorf("headers\n got %v\nwant %v", got, want)
	}
	if p, err := Partitioner(pm.Topic).Partition(pm, 6); err != nil || p != 2 {
		t.Errorf("partition %d %v, want the original 2", p, err)
	}
	if p, _ := Partitioner(pm.Topic).Partition(pm, 2); p == 2 || p < 0 {
		t.Errorf("partition %d on a 2-partition topic", p)
	}

	unkeyed := dead(t, "onex.evt.platform.node-heartbeat.v1", nil, []byte(`{}`), connErr, 0, t0, 1)
	pm, err = ReplayMessage(unkeyed, run, now)
	if err != nil || pm.Key != nil {
		t.Errorf("unkeyed replay: key %v err %v", pm.Key, err)
	}
	badTopic := dead(t, "onex.evt.platform.node-heartbeat.v1", nil, []byte(`{}`), connErr, 0, t0, 1)
	badTopic.Record.OriginalTopic = "a b"
	if _, err := ReplayMessage(badTopic, run, now); err == nil {
		t.Error("invalid original topic accepted")
	}
	if _, err := ReplayMessage(NewEntry(&sarama.ConsumerMessage{Value: []byte("x")}), run, now); err == nil {
		t.Error("undecodable record replayed")
	}
}

func equalHeaders(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuarantineMessage(t *testing.T) {
	e := dead(t, "onex.evt.platform.node-introspection.v1", []byte("k"), []byte(`{"payload": {"node_id": "x"}}`), contentErr, 1, t0, 17)
	e.Partition = 4
	qid := uuid.MustParse("00000000-0000-4000-8000-0000000000aa")
	now := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
	pm, err := QuarantineMessage(e, "Non-retryable error type: ValidationError", qid, "onex.dlq.omnibase-infra.quarantine.v1", now)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := pm.Key.Encode()
	v, _ := pm.Value.Encode()
	if pm.Topic != "onex.dlq.omnibase-infra.quarantine.v1" || string(k) != corr.String() {
		t.Errorf("topic %s key %s", pm.Topic, k)
	}
	var payload strings.Builder
	var w = &payload
	w.WriteString(`{"quarantine_correlation_id": "00000000-0000-4000-8000-0000000000aa", "quarantined_at": "2026-03-03T09:00:00+00:00", ` +
		`"quarantined_by": "node_dlq_replay_effect", "reason": "Non-retryable error type: ValidationError", ` +
		`"original_topic": "onex.evt.platform.node-introspection.v1", "original_correlation_id": "` + corr.String() + `", ` +
		`"error_type": "ValidationError", "retry_count": 1, "source_dlq_topic": "onex.dlq.omnibase-infra.events.v1", ` +
		`"source_dlq_offset": 17, "source_dlq_partition": 4, "original_payload": `)
	w.Write(e.Value)
	w.WriteString("}")
	if string(v) != payload.String() {
		t.Errorf("body\n got %s\nwant %s", v, payload.String())
	}
	want := [][2]string{
		{"x-quarantine-reason", "Non-retryable error type: ValidationError"},
		{"x-quarantine-correlation-id", qid.String()},
		{"correlation_id", corr.String()},
	}
	if got := headerList(pm); !equalHeaders(got, want) {
		t.Errorf("headers\n got %v\nwant %v", got, want)
	}
	q, err := DecodeQuarantined(v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := dlq.Decode(q.OriginalPayload)
	if err != nil || back.OriginalMessage.Value != e.Record.OriginalMessage.Value || *back.OriginalMessage.Key != "k" {
		t.Errorf("original_payload does not give back the DLQ record: %v %+v", err, back)
	}
	if _, err := QuarantineMessage(e, "r", qid, "bad topic", now); err == nil {
		t.Error("invalid quarantine topic accepted")
	}
}

func TestStats(t *testing.T) {
	s := Stats{}
	for i := 0; i < 3; i++ {
		s.Add(dead(t, "onex.evt.platform.node-introspection.v1", nil, []byte(`{}`), contentErr, 0, t0, int64(i)))
	}
	s.Add(dead(t, "onex.evt.platform.node-introspection.v1", nil, []byte(`{}`), connErr, 0, t0, 9))
	s.Add(dead(t, "onex.cmd.platform.node-registration-acked.v1", nil, []byte(`{}`), connErr, 0, t0, 9))
	s.Add(NewEntry(&sarama.ConsumerMessage{Topic: "onex.dlq.omnibase-infra.events.v1", Value: []byte("?")}))
	rows := s.Rows()
	want := []StatsRow{
		{StatsKey{"onex.dlq.omnibase-infra.commands.v1", "onex.cmd.platform.node-registration-acked.v1", "InfraConnectionError", ""}, 1},
		{StatsKey{"onex.dlq.omnibase-infra.events.v1", "onex.evt.platform.node-introspection.v1", "ValidationError", ""}, 3},
		{StatsKey{"onex.dlq.omnibase-infra.events.v1", "", Undecodable, ""}, 1},
		{StatsKey{"onex.dlq.omnibase-infra.events.v1", "onex.evt.platform.node-introspection.v1", "InfraConnectionError", ""}, 1},
	}
	if len(rows) != len(want) || s.Total() != 6 {
		t.Fatalf("rows %+v total %d", rows, s.Total())
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	b, _ := json.Marshal(rows[0])
	if string(b) != `{"dlq_topic":"onex.dlq.omnibase-infra.commands.v1","original_topic":"onex.cmd.platform.node-registration-acked.v1","error_type":"InfraConnectionError","failure_class":"","count":1}` {
		t.Errorf("json %s", b)
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"ok", Config{MaxReplayCount: 5, RateLimit: 100}, ""},
		{"zero max", Config{MaxReplayCount: 0, RateLimit: 100}, "max replay count"},
		{"zero rate", Config{MaxReplayCount: 5, RateLimit: 0}, "rate limit"},
		{"negative rate", Config{MaxReplayCount: 5, RateLimit: -1}, "rate limit"},
		{"negative limit", Config{MaxReplayCount: 5, RateLimit: 1, Limit: -1}, "limit"},
		{"bad window", Config{MaxReplayCount: 5, RateLimit: 1, Filter: Filter{Start: t0, End: t0.Add(-time.Second)}}, "before start"},
		{"bad quarantine topic", Config{MaxReplayCount: 5, RateLimit: 1, QuarantineTopic: "a/b"}, "quarantine topic"},
	}
	for _, tt := range tests {
		err := tt.c.defaults()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if err == nil && (tt.c.QuarantineTopic != "onex.dlq.omnibase-infra.quarantine.v1" || tt.c.Now == nil || tt.c.NewID == nil || tt.c.Log == nil) {
			t.Errorf("%s: defaults not filled: %+v", tt.name, tt.c)
		}
	}
}

func TestNonRetryableTypes(t *testing.T) {
	for _, n := range NonRetryableTypes() {
		if !NonRetryable(n) {
			t.Errorf("%s listed but not non-retryable", n)
		}
	}
	if len(NonRetryableTypes()) != len(nonRetryable) {
		t.Error("NonRetryableTypes and the set differ")
	}
	for _, n := range []string{"InfraConnectionError", "InfraTimeoutError", "InfraUnavailableError", "InfraRateLimitedError", "RuntimeHostError", ""} {
		if NonRetryable(n) {
			t.Errorf("%s is quarantined", n)
		}
	}
}
