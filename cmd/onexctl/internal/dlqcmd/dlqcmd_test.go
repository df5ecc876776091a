package dlqcmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/cli"
	"github.com/omninode/onex-fleet/cmd/onexctl/internal/dlqcmd"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/dlq/replay"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/projector-effect/projectortest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Execute(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// fleet is one test's topics on the real broker and its migrated database.
type fleet struct {
	brokers                         []string
	dlqTopic, origTopic, quarantine string
	dsn                             string
	client                          sarama.Client
	corr                            map[string]uuid.UUID
	pos                             map[string]string // name → DLQ position
	sent                            map[string]*sarama.ProducerMessage
	fixture                         []byte
	now                             time.Time
}

// newFleet seeds a fresh DLQ topic with records built by pkg/dlq: a
// retriable infra error (a real introspection envelope of set), a
// ValidationError, an infra error already replayed 5 times, one that failed
// three days ago, and the Python runtime's own DLQ record (set's
// dlq-content-error: the current package's, or the older fixture).
func newFleet(t *testing.T, set testkit.WireSet) *fleet {
	t.Helper()
	f := &fleet{brokers: testkit.KafkaBrokers(t), corr: map[string]uuid.UUID{}, pos: map[string]string{}, sent: map[string]*sarama.ProducerMessage{}}
	srv := projectortest.Start(t) // a database migrated by the projector: dlq_replay_history exists
	f.dsn = srv.DSN
	u := testkit.Unique()
	f.dlqTopic = "onex.dlq.test" + u + ".events.v1"
	f.origTopic = "onex.evt.test" + u + ".node-introspection.v1"
	f.quarantine = "onex.dlq.test" + u + ".quarantine.v1"
	testkit.CreateTopic(t, f.brokers, f.dlqTopic, 1, nil)
	testkit.CreateTopic(t, f.brokers, f.origTopic, 3, nil)
	testkit.CreateTopic(t, f.brokers, f.quarantine, 1, nil)
	cfg, err := replay.NewClientConfig(f.brokers, "onexctl-dlq-test")
	if err != nil {
		t.Fatal(err)
	}
	if f.client, err = sarama.NewClient(f.brokers, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.client.Close() })
	p, err := sarama.NewSyncProducerFromClient(f.client)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	f.now = time.Now().UTC().Truncate(time.Microsecond)
	f.fixture = set.Read(t, "introspection-effect.json")
	send := func(name string, pm *sarama.ProducerMessage) {
		part, off, err := p.SendMessage(pm)
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		f.pos[name] = replay.FormatPosition(f.dlqTopic, part, off)
		f.sent[name] = pm
	}
	build := func(name string, fl dlq.Failure, key string, value []byte, when time.Time) {
		f.corr[name] = uuid.New()
		fl.CorrelationID, fl.DLQTopic = f.corr[name], f.dlqTopic
		orig := &sarama.ConsumerMessage{Topic: f.origTopic, Partition: 2, Offset: 7, Key: []byte(key), Value: value}
		pm, err := dlq.Build(orig, fl, "test", when)
		if err != nil {
			t.Fatal(err)
		}
		send(name, pm)
	}
	conn := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportConsul}, "consul refused the registration", nil)
	build("retriable", dlq.Failure{Err: conn, Class: dlq.ClassConsumerError}, "node-a", f.fixture, f.now.Add(-time.Hour))
	build("invalid", dlq.Failure{Err: infraerr.Content("payload.node_id", "not a UUID"), Class: dlq.ClassPublisherMalformed}, "node-b", []byte(`{"envelope_id": "not-a-uuid", "payload": {}}`), f.now.Add(-50*time.Minute))
	build("over-max", dlq.Failure{Err: conn, RetryCount: 5}, "node-c", []byte(`{"n": 3}`), f.now.Add(-40*time.Minute))
	build("old", dlq.Failure{Err: conn}, "node-d", []byte(`{"n": 4}`), f.now.Add(-72*time.Hour))

	var rec struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(set.Read(t, "dlq-content-error.record.json"), &rec); err != nil {
		t.Fatal(err)
	}
	python := &sarama.ProducerMessage{Topic: f.dlqTopic, Value: sarama.ByteEncoder(bytes.TrimSpace(set.Read(t, "dlq-content-error.json")))}
	for _, k := range []string{"content_type", "correlation_id", "message_id", "timestamp", "source", "event_type", "failure_class"} {
		python.Headers = append(python.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(rec.Headers[k])})
	}
	f.corr["python"] = uuid.MustParse(rec.Headers["correlation_id"])
	send("python", python)
	return f
}

func (f *fleet) window() []string {
	return []string{"--start-time", f.now.Add(-24 * time.Hour).Format("2006-01-02T15:04:05"), "--end-time", f.now.Format(time.RFC3339Nano)}
}

func (f *fleet) replayArgs(extra ...string) []string {
	args := append([]string{"dlq", "replay", "--brokers", strings.Join(f.brokers, ","), "--dlq-topic", f.dlqTopic, "--quarantine-topic", f.quarantine, "-o", "json"}, f.window()...)
	return append(args, extra...)
}

func (f *fleet) count(t *testing.T, topic string) int64 {
	t.Helper()
	var n int64
	for p := int32(0); ; p++ {
		hwm, err := f.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return n
		}
		n += hwm
	}
}

func decodeReport(t *testing.T, out string) replay.Report {
	t.Helper()
	var rep replay.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	return rep
}

func statuses(rep replay.Report) map[string]string {
	m := map[string]string{}
	for _, o := range rep.Outcomes {
		m[o.Position] = string(o.Status) + " " + string(o.Action)
	}
	return m
}

// TestReplayScenario is the replay procedure of docs/dlq-runbook.md on the
// real broker and PostgreSQL: stats, list, show, dry run, tracked run,
// second run; once with the current package's records (golden), once with
// the older fixtures.
func TestReplayScenario(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { replayScenario(t, set) })
	}
}

func replayScenario(t *testing.T, set testkit.WireSet) {
	f := newFleet(t, set)
	t.Setenv(dlqcmd.EnvDBURL, f.dsn)
	b := strings.Join(f.brokers, ",")

	// stats: per DLQ topic × original topic × error type × failure class.
	code, out, errs := run(t, "dlq", "stats", "--brokers", b, "--dlq-topic", f.dlqTopic, "-o", "json")
	if code != 0 {
		t.Fatalf("stats: exit %d: %s", code, errs)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r replay.StatsRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%d", r.OriginalTopic, r.ErrorType, r.FailureClass, r.Count))
	}
	sort.Strings(got)
	want := []string{
		"onex.evt.platform.node-introspection.v1|JSONDecodeError|publisher_malformed|1",
		f.origTopic + "|InfraConnectionError||2",
		f.origTopic + "|InfraConnectionError|consumer_error|1",
		f.origTopic + "|ValidationError|publisher_malformed|1",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stats\n got %v\nwant %v", got, want)
	}
	code, out, _ = run(t, "dlq", "stats", "--brokers", b, "--dlq-topic", f.dlqTopic)
	if code != 0 || !strings.Contains(out, "DLQ_TOPIC") || !strings.Contains(out, "TOTAL") || !strings.HasSuffix(strings.TrimSpace(out), "5") {
		t.Errorf("stats table: exit %d\n%s", code, out)
	}

	// list: filters, limit, and the default of every onex.dlq.* topic.
	listed := func(args ...string) []map[string]any {
		t.Helper()
		code, out, errs := run(t, append([]string{"dlq", "list", "--brokers", b, "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("list %v: exit %d: %s", args, code, errs)
		}
		var items []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			items = append(items, m)
		}
		return items
	}
	if items := listed("--dlq-topic", f.dlqTopic, "--filter-error-type", "ValidationError"); len(items) != 1 || items[0]["correlation_id"] != f.corr["invalid"].String() || items[0]["position"] != f.pos["invalid"] {
		t.Errorf("list by error type: %v", items)
	}
	if items := listed(append([]string{"--dlq-topic", f.dlqTopic}, f.window()...)...); len(items) != 3 {
		t.Errorf("list in the window: %d records, want 3", len(items))
	}
	if items := listed("--dlq-topic", f.dlqTopic, "--filter-topic", "onex.evt.platform.node-introspection.v1"); len(items) != 1 || items[0]["error_type"] != "JSONDecodeError" || items[0]["key"] != nil {
		t.Errorf("list of the Python record: %v", items)
	}
	if items := listed("--limit", "0", "--filter-correlation-id", strings.ToUpper(f.corr["over-max"].String())); len(items) != 1 || items[0]["position"] != f.pos["over-max"] {
		t.Errorf("list over every DLQ topic by correlation id: %v", items)
	}
	code, out, errs = run(t, "dlq", "list", "--brokers", b, "--dlq-topic", f.dlqTopic, "--limit", "2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "POSITION") || !strings.Contains(errs, "--limit 2") {
		t.Errorf("list --limit 2: exit %d\n%s\n%s", code, out, errs)
	}

	// show: by position, with the decoded original envelope; by correlation id.
	code, out, errs = run(t, "dlq", "show", "--brokers", b, f.pos["retriable"])
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, errs)
	}
	var d struct {
		Position string          `json:"position"`
		RecordID string          `json:"record_id"`
		Kind     string          `json:"kind"`
		Key      string          `json:"key"`
		Body     json.RawMessage `json:"body"`
		Envelope json.RawMessage `json:"original_envelope"`
		Headers  []replay.Header `json:"headers"`
		Decision struct {
			Action string `json:"action"`
		} `json:"replay_decision"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("show output %s: %v", out, err)
	}
	wantBody, _ := f.sent["retriable"].Value.Encode()
	if d.Position != f.pos["retriable"] || d.Kind != "dlq" || d.Key != "node-a" || compact(t, d.Body) != compact(t, wantBody) || d.Decision.Action != "replay" {
		t.Errorf("show: %+v", d)
	}
	// show prints the original envelope as the fleet reads it: decoded and
	// written in the current wire form (an older record gains the fields
	// the current envelope added, as null).
	wantEnv, err := envelope.Canonicalize(f.fixture)
	if err != nil {
		t.Fatal(err)
	}
	if compact(t, d.Envelope) != compact(t, wantEnv) {
		t.Errorf("original envelope\n got %s\nwant %s", d.Envelope, wantEnv)
	}
	if len(d.Headers) != len(f.sent["retriable"].Headers) || d.Headers[2].Key != "message_id" || d.RecordID != d.Headers[2].Value {
		t.Errorf("show headers %v, record id %s", d.Headers, d.RecordID)
	}
	code, out, _ = run(t, "dlq", "show", "--brokers", b, "--dlq-topic", f.dlqTopic, f.corr["invalid"].String())
	if code != 0 || !strings.Contains(out, f.pos["invalid"]) || !strings.Contains(out, `"action": "quarantine"`) || !strings.Contains(out, "original_envelope_error") {
		t.Errorf("show by correlation id: exit %d\n%s", code, out)
	}
	if code, _, errs := run(t, "dlq", "show", "--brokers", b, f.dlqTopic+"/0/999"); code != 1 || !strings.Contains(errs, "no record") {
		t.Errorf("show past the end: exit %d %s", code, errs)
	}

	// Dry run: decisions, nothing produced, nothing recorded.
	code, out, errs = run(t, f.replayArgs("--dry-run")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, errs)
	}
	rep := decodeReport(t, out)
	wantDry := map[string]string{f.pos["retriable"]: "PENDING replay", f.pos["invalid"]: "PENDING quarantine", f.pos["over-max"]: "PENDING quarantine"}
	if fmt.Sprint(statuses(rep)) != fmt.Sprint(wantDry) || !rep.DryRun || !rep.Tracking || rep.NotSelected != 2 {
		t.Errorf("dry run report %+v", rep)
	}
	if n := f.count(t, f.origTopic) + f.count(t, f.quarantine); n != 0 {
		t.Fatalf("dry run produced %d records", n)
	}
	h, err := dlqcmd.OpenHistory(context.Background(), f.dsn, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if rows, err := h.Rows(context.Background(), rep.RunID); err != nil || len(rows) != 0 {
		t.Fatalf("dry run history rows %v %v", rows, err)
	}

	// Real run (tracking on by default: OMNIBASE_INFRA_DB_URL is set).
	code, out, errs = run(t, f.replayArgs("--rate-limit", "20")...)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, `"correlation_id":"`+f.corr["retriable"].String()+`"`) {
		t.Errorf("no log line with the replayed record's correlation_id:\n%s", errs)
	}
	rep = decodeReport(t, out)
	wantRun := map[string]string{f.pos["retriable"]: "COMPLETED replay", f.pos["invalid"]: "QUARANTINED quarantine", f.pos["over-max"]: "QUARANTINED quarantine"}
	if fmt.Sprint(statuses(rep)) != fmt.Sprint(wantRun) || rep.DryRun || !rep.Tracking {
		t.Fatalf("run report %+v", rep)
	}

	// The replayed record: original topic and partition, key, value bytes, headers.
	msgs := testkit.ReadAll(t, f.brokers, f.origTopic, 1, 30*time.Second, true)
	if len(msgs) != 1 {
		t.Fatalf("%d records on the original topic, want 1", len(msgs))
	}
	m := msgs[0]
	if string(m.Key) != "node-a" || !bytes.Equal(m.Value, f.fixture) || m.Partition != 2 {
		t.Errorf("replayed key %q partition %d value equal %v", m.Key, m.Partition, bytes.Equal(m.Value, f.fixture))
	}
	var hk []string
	hv := map[string]string{}
	for _, hd := range m.Headers {
		hk = append(hk, string(hd.Key))
		hv[string(hd.Key)] = string(hd.Value)
	}
	_, _, dlqOffset, _ := replay.ParsePosition(f.pos["retriable"])
	if strings.Join(hk, ",") != "x-replay-count,x-replayed-at,x-replayed-by,x-original-dlq-offset,x-replay-correlation-id,correlation_id" ||
		hv["x-replay-count"] != "1" || hv["x-replayed-by"] != "node_dlq_replay_effect" || hv["x-original-dlq-offset"] != fmt.Sprint(dlqOffset) ||
		hv["x-replay-correlation-id"] != rep.RunID.String() || hv["correlation_id"] != f.corr["retriable"].String() {
		t.Errorf("replay headers %v %v", hk, hv)
	}
	if at, err := dlq.ParseTimestamp(hv["x-replayed-at"]); err != nil || at.Before(f.now) || !strings.HasSuffix(hv["x-replayed-at"], "+00:00") {
		t.Errorf("x-replayed-at %q", hv["x-replayed-at"])
	}

	// The quarantine records: exactly what QuarantineMessage builds for the
	// DLQ record, with the run's id and time.
	qs := testkit.ReadAll(t, f.brokers, f.quarantine, 2, 30*time.Second, true)
	if len(qs) != 2 {
		t.Fatalf("%d quarantine records, want 2", len(qs))
	}
	sc := replay.Scanner{Client: f.client}
	qids := map[string]string{}
	for _, q := range qs {
		body, err := replay.DecodeQuarantined(q.Value)
		if err != nil {
			t.Fatal(err)
		}
		src, err := sc.Read(context.Background(), body.SourceDLQTopic, body.SourceDLQPartition, body.SourceDLQOffset)
		if err != nil {
			t.Fatal(err)
		}
		at, err := dlq.ParseTimestamp(body.QuarantinedAt)
		if err != nil {
			t.Fatal(err)
		}
		want, err := replay.QuarantineMessage(src, body.Reason, uuid.MustParse(body.QuarantineCorrelationID), f.quarantine, at)
		if err != nil {
			t.Fatal(err)
		}
		wv, _ := want.Value.Encode()
		wk, _ := want.Key.Encode()
		if !bytes.Equal(q.Value, wv) || !bytes.Equal(q.Key, wk) || len(q.Headers) != 3 {
			t.Errorf("quarantine record\n got %s\nwant %s", q.Value, wv)
		}
		for i, hd := range q.Headers {
			if string(hd.Key) != string(want.Headers[i].Key) || string(hd.Value) != string(want.Headers[i].Value) {
				t.Errorf("quarantine header %d: %s=%s", i, hd.Key, hd.Value)
			}
		}
		qids[src.Position()] = body.QuarantineCorrelationID
		wantReason := map[string]string{f.pos["invalid"]: "Non-retryable error type: ValidationError", f.pos["over-max"]: "Exceeded max replay count: 5 >= 5"}[src.Position()]
		if body.Reason != wantReason {
			t.Errorf("%s quarantined for %q, want %q", src.Position(), body.Reason, wantReason)
		}
	}

	// History: one row per decision.
	rows, err := h.Rows(context.Background(), rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("history rows %+v", rows)
	}
	for _, r := range rows {
		pos := replay.FormatPosition(f.dlqTopic, r.DLQPartition, r.DLQOffset)
		var mid string
		for _, hd := range f.sent[nameOf(f, pos)].Headers {
			if string(hd.Key) == "message_id" {
				mid = string(hd.Value)
			}
		}
		if r.OriginalMessageID.String() != mid || r.OriginalTopic != f.origTopic {
			t.Errorf("row %+v: original_message_id is not the DLQ record's message_id %s", r, mid)
		}
		switch pos {
		case f.pos["retriable"]:
			if r.Status != replay.StatusCompleted || !r.Success || r.TargetTopic != f.origTopic || r.RetryCount != 0 || r.ErrorMessage != "" {
				t.Errorf("completed row %+v", r)
			}
		case f.pos["invalid"], f.pos["over-max"]:
			if r.Status != replay.StatusQuarantined || r.Success || r.TargetTopic != f.quarantine || r.ID.String() != qids[pos] || r.ErrorMessage == "" {
				t.Errorf("quarantined row %+v (quarantine id %s)", r, qids[pos])
			}
		default:
			t.Errorf("row for %s", pos)
		}
	}

	// Second run: nothing is replayed or quarantined twice.
	code, out, errs = run(t, f.replayArgs()...)
	if code != 0 {
		t.Fatalf("second replay: exit %d: %s", code, errs)
	}
	rep2 := decodeReport(t, out)
	for _, o := range rep2.Outcomes {
		if o.Status != replay.StatusSkipped || !strings.HasPrefix(o.Reason, "already ") {
			t.Errorf("second run outcome %+v", o)
		}
	}
	if len(rep2.Outcomes) != 3 || f.count(t, f.origTopic) != 1 || f.count(t, f.quarantine) != 2 {
		t.Errorf("second run: %d outcomes, %d replayed, %d quarantined", len(rep2.Outcomes), f.count(t, f.origTopic), f.count(t, f.quarantine))
	}
	if rows, _ := h.Rows(context.Background(), rep2.RunID); len(rows) != 3 || rows[0].Status != replay.StatusSkipped {
		t.Errorf("second run history %+v", rows)
	}

	// Without tracking the same command would replay again: tracking is what prevents it.
	code, out, _ = run(t, f.replayArgs("--dry-run", "--enable-tracking=false")...)
	if rep3 := decodeReport(t, out); code != 0 || rep3.Tracking || rep3.Count(replay.StatusPending) != 3 {
		t.Errorf("untracked dry run: exit %d %+v", code, rep3)
	}

	// A second tracked replay while one runs is refused.
	lock, err := dlqcmd.OpenHistory(context.Background(), f.dsn, true)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = run(t, f.replayArgs()...)
	lock.Close()
	if code != 1 || !strings.Contains(errs, "another tracked DLQ replay") {
		t.Errorf("concurrent replay: exit %d %s", code, errs)
	}

	// Table output.
	code, out, _ = run(t, append(f.replayArgs("--dry-run"), "-o", "table")...)
	if code != 0 || !strings.HasPrefix(out, "POSITION") || !strings.Contains(out, "(dry run: nothing written), tracking on: 5 scanned, 2 not selected, 0 completed, 0 quarantined, 0 failed, 3 skipped") {
		t.Errorf("table output: exit %d\n%s", code, out)
	}
}

// TestPythonDLQRecordRead needs no servers: the Python runtime's own DLQ
// record (the current package's, golden, and the older fixture), as the
// tool reads it from the topic — value and headers as recorded — is decoded
// into the fields list, show, stats and replay use, and replay quarantines
// it (JSONDecodeError is not retryable) with a quarantine record that
// carries its body unchanged.
func TestPythonDLQRecordRead(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			value := bytes.TrimSpace(set.Read(t, "dlq-content-error.json"))
			var rec struct {
				Topic   string          `json:"topic"`
				Key     *string         `json:"key"`
				Headers json.RawMessage `json:"headers"`
			}
			if err := json.Unmarshal(set.Read(t, "dlq-content-error.record.json"), &rec); err != nil {
				t.Fatal(err)
			}
			hdr := map[string]string{}
			if err := json.Unmarshal(rec.Headers, &hdr); err != nil {
				t.Fatal(err)
			}
			var body struct {
				OriginalMessage struct {
					Value string `json:"value"`
				} `json:"original_message"`
				FailureReason string `json:"failure_reason"`
			}
			if err := json.Unmarshal(value, &body); err != nil {
				t.Fatal(err)
			}
			// The headers in their recorded order.
			dec := json.NewDecoder(bytes.NewReader(rec.Headers))
			if _, err := dec.Token(); err != nil {
				t.Fatal(err)
			}
			m := &sarama.ConsumerMessage{Topic: rec.Topic, Partition: 0, Offset: 17, Value: value}
			for dec.More() {
				k, _ := dec.Token()
				v, _ := dec.Token()
				m.Headers = append(m.Headers, &sarama.RecordHeader{Key: []byte(k.(string)), Value: []byte(v.(string))})
			}
			if rec.Key != nil {
				m.Key = []byte(*rec.Key)
			}

			e := replay.NewEntry(m)
			if e.DecodeErr != nil || e.Record == nil || e.Quarantined != nil {
				t.Fatalf("entry: record %v, quarantined %v, err %v", e.Record, e.Quarantined, e.DecodeErr)
			}
			const orig = "onex.evt.platform.node-introspection.v1"
			if e.OriginalTopic() != orig || hdr["original_topic"] != orig || e.ErrorType() != "JSONDecodeError" || e.FailureClass() != dlq.ClassPublisherMalformed || e.RetryCount() != 0 {
				t.Errorf("entry: topic %q error %q class %q retries %d", e.OriginalTopic(), e.ErrorType(), e.FailureClass(), e.RetryCount())
			}
			if e.CorrelationID() != hdr["correlation_id"] {
				t.Errorf("correlation id %q, header %q", e.CorrelationID(), hdr["correlation_id"])
			}
			if e.ID().String() != hdr["message_id"] {
				t.Errorf("record id %s, want the message_id header %s", e.ID(), hdr["message_id"])
			}
			if at, ok := e.FailedAt(); !ok || dlq.FormatTimestamp(at) != hdr["failure_timestamp"] {
				t.Errorf("failed at %v %v, header %q", at, ok, hdr["failure_timestamp"])
			}
			om := e.Record.OriginalMessage
			if om.Key != nil || om.Offset == nil || *om.Offset != 1042 || om.Partition == nil || *om.Partition != 3 || om.Value != body.OriginalMessage.Value ||
				!strings.HasPrefix(om.Value, `{"payload": {"node_id": "not-a-uuid"`) {
				t.Errorf("original message %+v", om)
			}
			if e.Record.FailureReason != body.FailureReason || e.Record.FailureType != dlq.FailureTypeContent || e.Record.SerializationFallback {
				t.Errorf("record %+v", e.Record)
			}
			if set.Golden() && (!strings.HasPrefix(e.Record.FailureReason, "JSONDecodeError: ") || e.Record.FailureReason != hdr["failure_reason"]) {
				t.Errorf("current failure_reason %q, header %q", e.Record.FailureReason, hdr["failure_reason"])
			}

			stats := replay.Stats{}
			stats.Add(e)
			if rows := stats.Rows(); len(rows) != 1 || rows[0].DLQTopic != rec.Topic || rows[0].OriginalTopic != orig || rows[0].ErrorType != "JSONDecodeError" ||
				rows[0].FailureClass != dlq.ClassPublisherMalformed || rows[0].Count != 1 {
				t.Errorf("stats %+v", rows)
			}
			for _, f := range []replay.Filter{{}, {OriginalTopics: []string{orig}, ErrorTypes: []string{"JSONDecodeError"}, CorrelationIDs: []string{strings.ToUpper(hdr["correlation_id"])}}} {
				if ok, why := f.Match(e); !ok {
					t.Errorf("filter %+v: %s", f, why)
				}
			}
			d := replay.Decide(e, replay.Filter{}, replay.DefaultMaxReplayCount)
			if d.Action != replay.ActionQuarantine || d.Reason != "Non-retryable error type: JSONDecodeError" {
				t.Fatalf("decision %+v", d)
			}
			qid := uuid.MustParse("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
			q, err := replay.QuarantineMessage(e, d.Reason, qid, "onex.dlq.omnibase-infra.quarantine.v1", time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			qv, _ := q.Value.Encode()
			qb, err := replay.DecodeQuarantined(qv)
			if err != nil {
				t.Fatal(err)
			}
			if qb.OriginalTopic != orig || qb.OriginalCorrelationID != hdr["correlation_id"] || qb.ErrorType != "JSONDecodeError" || qb.SourceDLQTopic != rec.Topic ||
				qb.SourceDLQOffset != 17 || qb.Reason != d.Reason || qb.QuarantineCorrelationID != qid.String() {
				t.Errorf("quarantine body %+v", qb)
			}
			if !bytes.Contains(qv, []byte(`"original_payload": `+string(value))) {
				t.Errorf("quarantine record does not carry the DLQ body unchanged:\n%s", qv)
			}
		})
	}
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return buf.String()
}

func nameOf(f *fleet, pos string) string {
	for n, p := range f.pos {
		if p == pos {
			return n
		}
	}
	return ""
}

func TestUsageErrors(t *testing.T) {
	t.Setenv(dlqcmd.EnvDBURL, "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"zero rate", []string{"dlq", "replay", "--brokers", "x:1", "--rate-limit", "0"}, "--rate-limit"},
		{"negative rate", []string{"dlq", "replay", "--brokers", "x:1", "--rate-limit", "-5"}, "--rate-limit"},
		{"zero max count", []string{"dlq", "replay", "--brokers", "x:1", "--max-replay-count", "0"}, "--max-replay-count"},
		{"tracking without a database", []string{"dlq", "replay", "--brokers", "x:1", "--enable-tracking"}, dlqcmd.EnvDBURL},
		{"bad start time", []string{"dlq", "replay", "--brokers", "x:1", "--start-time", "yesterday"}, "--start-time"},
		{"window backwards", []string{"dlq", "list", "--brokers", "x:1", "--start-time", "2026-03-02", "--end-time", "2026-03-01"}, "before start"},
		{"negative limit", []string{"dlq", "list", "--brokers", "x:1", "--limit", "-1"}, "--limit"},
		{"bad output", []string{"dlq", "stats", "--brokers", "x:1", "-o", "yaml"}, "-o must be"},
		{"no brokers", []string{"dlq", "stats", "--brokers", ""}, "no brokers"},
		{"bad show argument", []string{"dlq", "show", "--brokers", "x:1", "not-an-id"}, "neither"},
		{"bad position", []string{"dlq", "show", "--brokers", "x:1", "t/x/1"}, "partition"},
	}
	for _, tt := range tests {
		code, _, errs := run(t, tt.args...)
		if code != 2 || !strings.Contains(errs, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, errs, tt.want)
		}
	}
}

// TestReplayRefusesQuarantine: the quarantine topic is never a replay source.
func TestReplayRefusesQuarantine(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	t.Setenv(dlqcmd.EnvDBURL, "")
	code, _, errs := run(t, "dlq", "replay", "--brokers", strings.Join(brokers, ","), "--dlq-topic", "onex.dlq.omnibase-infra.quarantine.v1", "--dry-run")
	if code != 2 || !strings.Contains(errs, "never replayed") {
		t.Errorf("exit %d %s", code, errs)
	}
}

// TestHistoryErrors: a database without the table, and credentials kept out
// of error messages.
func TestHistoryErrors(t *testing.T) {
	admin := testkit.PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "onex_dlqcmd_" + testkit.Unique()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	cfg, _ := pgx.ParseConfig(admin)
	empty := fmt.Sprintf("postgresql://%s:%s@%s:%d/%s", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	if _, err := dlqcmd.OpenHistory(ctx, empty, false); err == nil || !strings.Contains(err.Error(), "dlq_replay_history does not exist") {
		t.Errorf("database without the table: %v", err)
	}

	brokers := testkit.KafkaBrokers(t)
	topic := "onex.dlq.test" + testkit.Unique() + ".events.v1"
	testkit.CreateTopic(t, brokers, topic, 1, nil)
	wrong := fmt.Sprintf("postgresql://%s:Sekr3tXyz@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	t.Setenv(dlqcmd.EnvDBURL, wrong)
	code, out, errs := run(t, "dlq", "replay", "--brokers", strings.Join(brokers, ","), "--dlq-topic", topic)
	if code != 1 || strings.Contains(out+errs, "Sekr3tXyz") || strings.Contains(out+errs, "postgresql://") || !strings.Contains(errs, "InfraAuthenticationError") || !strings.Contains(errs, "SQLSTATE 28P01") {
		t.Errorf("wrong password: exit %d, output leaks or is wrong:\n%s%s", code, out, errs)
	}
	t.Setenv(dlqcmd.EnvDBURL, fmt.Sprintf("postgresql://%s:Sekr3tXyz@127.0.0.1:1/%s", cfg.User, cfg.Database))
	code, out, errs = run(t, "dlq", "replay", "--brokers", strings.Join(brokers, ","), "--dlq-topic", topic)
	if code != 1 || strings.Contains(out+errs, "Sekr3tXyz") || errs != "replay: InfraConnectionError: cannot connect to the PostgreSQL server of OMNIBASE_INFRA_DB_URL: connection refused\n" {
		t.Errorf("refused: exit %d, stderr %q", code, errs)
	}
}
