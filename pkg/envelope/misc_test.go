package envelope

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

func TestSemVer(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"1.2.3", false},
		{"0.0.0", false},
		{"1.2.3-rc.1+build.5", false},
		{"1.2.3-alpha-1", false},
		{"1.2", true},
		{"01.2.3", true},
		{"1.2.3-01", true},
		{"1.2.3-", true},
		{"1.2.3+a..b", true},
		{"v1.2.3", true},
		{"1.2.3-a_b", true},
	}
	for _, tt := range tests {
		v, err := ParseSemVer(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSemVer(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && v.String() != tt.in {
			t.Errorf("ParseSemVer(%q).String() = %q", tt.in, v.String())
		}
	}
	v := SemVer{Major: 1, Prerelease: []string{"rc", "1", "01"}, Build: []string{}}
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"major": 1, "minor": 0, "patch": 0, "prerelease": ["rc", 1, "01"], "build": []}`; string(b) != want {
		t.Fatalf("MarshalJSON = %s, want %s", b, want)
	}
	var back SemVer
	if err := back.UnmarshalJSON(b); err != nil || back.String() != v.String() || back.Build == nil {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if err := back.UnmarshalJSON([]byte(`"1.0.0"`)); err == nil {
		t.Fatal("string SemVer accepted")
	}
}

func TestTimeFormats(t *testing.T) {
	tests := []struct {
		in, json, header string
		wantErr, naive   bool
	}{
		{in: "2026-03-02T14:05:07.401122Z", json: "2026-03-02T14:05:07.401122Z", header: "2026-03-02T14:05:07.401122+00:00"},
		{in: "2026-03-02T14:05:08Z", json: "2026-03-02T14:05:08Z", header: "2026-03-02T14:05:08+00:00"},
		{in: "2026-03-02T14:07:00.125000Z", json: "2026-03-02T14:07:00.125000Z", header: "2026-03-02T14:07:00.125000+00:00"},
		{in: "2026-03-02T14:05:07.413015+00:00", json: "2026-03-02T14:05:07.413015Z", header: "2026-03-02T14:05:07.413015+00:00"},
		{in: "2026-03-02T14:05:07-05:30", json: "2026-03-02T14:05:07-05:30", header: "2026-03-02T14:05:07-05:30"},
		{in: "2026-03-02 14:05:07.1234567891+0100", json: "2026-03-02T14:05:07.123456+01:00", header: "2026-03-02T14:05:07.123456+01:00"},
		{in: "2026-03-02T14:05z", json: "2026-03-02T14:05:00Z", header: "2026-03-02T14:05:00+00:00"},
		{in: "2026-03-02T14:05:07.000000Z", json: "2026-03-02T14:05:07Z", header: "2026-03-02T14:05:07+00:00"},
		{in: "2026-03-02T14:05:07", naive: true, header: "2026-03-02T14:05:07+00:00"},
		{in: "2026-02-30T00:00:00Z", wantErr: true},
		{in: "2024-02-29T00:00:00Z", json: "2024-02-29T00:00:00Z", header: "2024-02-29T00:00:00+00:00"},
		{in: "2026-03-02T24:00:00Z", wantErr: true},
		{in: "2026-03-02T14:05:60Z", wantErr: true},
		{in: "2026-03-02T14:05:07+24:00", wantErr: true},
		{in: "2026-03-02T14:05:07.Z", wantErr: true},
		{in: "2026-03-02T14:05:07Zx", wantErr: true},
		{in: "0000-01-01T00:00:00Z", wantErr: true},
		{in: "2026-3-2T14:05:07Z", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		switch {
		case tt.wantErr || tt.naive:
			if err == nil {
				t.Errorf("ParseTime(%q) accepted", tt.in)
			}
			if tt.naive && !errors.Is(err, ErrNaiveTime) {
				t.Errorf("ParseTime(%q) err = %v, want ErrNaiveTime", tt.in, err)
			}
		case err != nil:
			t.Errorf("ParseTime(%q): %v", tt.in, err)
		case FormatTime(got) != tt.json:
			t.Errorf("FormatTime(ParseTime(%q)) = %s, want %s", tt.in, FormatTime(got), tt.json)
		}
		if tt.wantErr {
			continue
		}
		h, err := ParseHeaderTime(tt.in)
		if err != nil {
			t.Errorf("ParseHeaderTime(%q): %v", tt.in, err)
		} else if FormatHeaderTime(h) != tt.header {
			t.Errorf("FormatHeaderTime(ParseHeaderTime(%q)) = %s, want %s", tt.in, FormatHeaderTime(h), tt.header)
		}
	}
}

func TestDeterministicIDMatchesPython(t *testing.T) {
	corr := uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d")
	// uuid.uuid5(corr, name) computed with CPython.
	tests := []struct {
		class string
		index int
		want  string
	}{
		{"ModelNodeBecameActive", 0, "17a56b38-5339-5e6a-9f02-10c143a7615a"},
		{"ModelNodeRegistrationInitiated", 1, "ca3a07bd-5609-5cb4-807e-26c4cd1d21f3"},
	}
	for _, tt := range tests {
		if got := DeterministicID(corr, tt.class, tt.index).String(); got != tt.want {
			t.Errorf("DeterministicID(%s, %d) = %s, want %s", tt.class, tt.index, got, tt.want)
		}
	}
}

func TestEventTypeFromTopic(t *testing.T) {
	tests := map[string]string{
		"onex.evt.platform.node-became-active.v1":      "platform.node-became-active",
		"onex.cmd.platform.node-registration-acked.v1": "platform.node-registration-acked",
		"onex.evt.platform.v1":                         "",
		"dev.evt.platform.node.v1":                     "",
		"onex.evt.platform.x.v1.ext":                   "platform.x",
		"":                                             "",
	}
	for in, want := range tests {
		if got := EventTypeFromTopic(in); got != want {
			t.Errorf("EventTypeFromTopic(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPeekCorrelationID(t *testing.T) {
	want := uuid.MustParse("9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f")
	tests := []struct {
		name string
		in   string
		ok   bool
		want uuid.UUID
	}{
		{"bare tick", string(readFixture(t, "runtime-tick.json")), true, want},
		{"envelope", string(readFixture(t, "ack.json")), true, uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d")},
		{"truncated after id", `{"correlation_id": "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", "payload": {"x": `, true, want},
		{"nested only", `{"payload": {"correlation_id": "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"}}`, false, uuid.Nil},
		{"not uuid", `{"correlation_id": "abc"}`, false, uuid.Nil},
		{"null", `{"correlation_id": null}`, false, uuid.Nil},
		{"array", `[1]`, false, uuid.Nil},
		{"garbage", `xx`, false, uuid.Nil},
	}
	for _, tt := range tests {
		got, ok := PeekCorrelationID([]byte(tt.in))
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: got %s %v, want %s %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// The Kafka headers of both record sets, the older fixtures and the
// current goldens, decode and are written back in their order.
func TestHeadersGolden(t *testing.T) {
	type rec struct{ set, name string }
	var recs []rec
	for _, name := range recordFixtureNames(t) {
		recs = append(recs, rec{"fixtures", name})
	}
	golden, err := filepath.Glob(filepath.Join(testkit.GoldenDir(t), "*.record.json"))
	if err != nil || len(golden) == 0 {
		t.Fatalf("no golden records: %v", err)
	}
	for _, g := range golden {
		recs = append(recs, rec{"golden", filepath.Base(g)})
	}
	for _, r := range recs {
		t.Run(r.set+"/"+r.name, func(t *testing.T) {
			var rf recordFixture
			if r.set == "golden" {
				rf = parseRecordFixture(t, r.name, readGolden(t, r.name))
			} else {
				rf = readRecordFixture(t, r.name)
			}
			h := HeadersFromRecords(rf.Headers)
			if h.ContentType != "application/json" || h.Priority != PriorityNormal || h.MaxRetries != 3 {
				t.Errorf("decoded %+v", h)
			}
			if h.CorrelationID.String() != string(rf.Headers[1].Value) || h.MessageID.String() != string(rf.Headers[2].Value) {
				t.Errorf("ids not read: %s %s", h.CorrelationID, h.MessageID)
			}
			got := h.Records()
			if len(got) != len(rf.Headers) {
				t.Fatalf("len(Records) = %d, want %d", len(got), len(rf.Headers))
			}
			for i := range got {
				if !bytes.Equal(got[i].Key, rf.Headers[i].Key) || !bytes.Equal(got[i].Value, rf.Headers[i].Value) {
					t.Errorf("header %d = %s=%s, want %s=%s", i, got[i].Key, got[i].Value, rf.Headers[i].Key, rf.Headers[i].Value)
				}
			}
		})
	}
}

func TestHeadersReaderTolerance(t *testing.T) {
	rec := func(kv ...string) []*sarama.RecordHeader {
		var out []*sarama.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, &sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return append(out, nil)
	}
	before := time.Now().Add(-time.Second)
	h := HeadersFromRecords(rec("correlation_id", "garbled", "priority", "urgent", "retry_count", "x",
		"max_retries", "y", "ttl_seconds", "z", "timestamp", "bad"))
	if h.CorrelationID.Version() != 4 || h.MessageID.Version() != 4 || h.CorrelationID == h.MessageID {
		t.Errorf("ids: %s %s", h.CorrelationID, h.MessageID)
	}
	if h.Priority != PriorityNormal || h.RetryCount != 0 || h.MaxRetries != 3 || h.TTLSeconds != nil {
		t.Errorf("defaults: %+v", h)
	}
	if h.Source != "unknown" || h.EventType != "unknown" || h.SchemaVersion != "1.0.0" {
		t.Errorf("string defaults: %+v", h)
	}
	if h.Timestamp.Before(before) {
		t.Errorf("timestamp default = %v", h.Timestamp)
	}
	h = HeadersFromRecords(rec("timestamp", "2026-03-02T14:05:07.5", "ttl_seconds", "60", "trace_id", "t1", "x-custom", "v", "priority", "low", "priority", "high"))
	if !h.Timestamp.Equal(time.Date(2026, 3, 2, 14, 5, 7, 5e8, time.UTC)) || *h.TTLSeconds != 60 || h.Priority != PriorityHigh {
		t.Errorf("parsed: %+v", h)
	}
	recs := h.Records()
	var keys []string
	for _, r := range recs {
		keys = append(keys, string(r.Key))
	}
	want := "content_type correlation_id message_id timestamp source event_type schema_version priority retry_count max_retries trace_id ttl_seconds x-custom"
	if got := join(keys); got != want {
		t.Errorf("record order = %s\nwant %s", got, want)
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestNewHeaders(t *testing.T) {
	h := NewHeaders("onex.evt.platform.node-heartbeat.v1", "local")
	if h.EventType != "onex.evt.platform.node-heartbeat.v1" || h.Source != "local" || h.ContentType != "application/json" ||
		h.SchemaVersion != "1.0.0" || h.Priority != PriorityNormal || h.RetryCount != 0 || h.MaxRetries != 3 ||
		h.CorrelationID == uuid.Nil || h.MessageID == uuid.Nil || h.Timestamp.IsZero() {
		t.Fatalf("NewHeaders = %+v", h)
	}
	if len(h.Records()) != 10 {
		t.Fatalf("Records() = %d headers, want 10", len(h.Records()))
	}
}
