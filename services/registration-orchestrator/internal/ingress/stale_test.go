package ingress

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/topics"
)

const window = 90 * time.Second

// payloadTime is the heartbeat fixture's payload timestamp.
func payloadTime(t *testing.T) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, set(t).HB.Timestamp)
	if err != nil {
		t.Fatalf("fixture heartbeat timestamp %q: %v", set(t).HB.Timestamp, err)
	}
	return ts
}

func TestStaleHeartbeats(t *testing.T) {
	s := set(t)
	paid := payloadTime(t)
	tests := []struct {
		name    string
		topic   string
		value   []byte
		window  time.Duration
		now     time.Time // the orchestrator's clock
		record  time.Time // the Kafka record timestamp (zero: none)
		skipped bool
	}{
		{name: "fresh by the record", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(time.Minute), record: paid.Add(time.Minute - 10*time.Second)},
		{name: "stale by the record", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(time.Minute), record: paid.Add(time.Minute - window - time.Millisecond), skipped: true},
		{name: "exactly a window old is kept", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(time.Minute), record: paid.Add(time.Minute - window)},
		// The record timestamp decides when there is one: a fresh record
		// with an old payload (a node with a slow clock) is forwarded.
		{name: "the record wins over the payload", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(time.Hour), record: paid.Add(time.Hour - time.Second)},
		{name: "stale by the payload without a record timestamp", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(window + time.Second), skipped: true},
		{name: "fresh by the payload without a record timestamp", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(window - time.Second)},
		{name: "an epoch record timestamp is none", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value, window: window,
			now: paid.Add(window - time.Second), record: time.Unix(0, 0)},
		{name: "no window, nothing skipped", topic: topics.NodeHeartbeat, value: s.Heartbeat().Value,
			now: paid.Add(time.Hour), record: paid},
		{name: "introspections are never skipped", topic: topics.NodeIntrospection, value: s.Introspection().Value, window: window,
			now: paid.Add(time.Hour), record: paid},
		// Skipped before decoding: a stale record is not even read, so a
		// malformed one is committed rather than dead-lettered.
		{name: "stale and malformed", topic: topics.NodeHeartbeat, value: []byte(`{"not":"an envelope"}`), window: window,
			now: paid.Add(time.Hour), record: paid, skipped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(nil)
			h := NewHandler(map[string]string{"physical": tt.topic}, "reducer-input", "test",
				Limits{MaxBytes: 1 << 20, MaxFutureSkew: 5 * time.Minute, HeartbeatWindow: tt.window}, m)
			h.now = func() time.Time { return tt.now }
			var logs bytes.Buffer
			ctx := observability.WithCorrelation(context.Background(),
				slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), uuid.New())
			out, err := h.Handle(ctx, []*bus.Message{{Topic: "physical", Value: tt.value, Timestamp: tt.record}})
			if err != nil || out.Outcomes != nil {
				t.Fatalf("Handle: %v, outcomes %v; want done", err, out.Outcomes)
			}
			if got := testutil.ToFloat64(m.HeartbeatsSkipped.WithLabelValues(SkipStale)); got != b2f(tt.skipped) {
				t.Errorf("skipped counter %v, want %v", got, b2f(tt.skipped))
			}
			if forwarded := len(out.Records) == 1; forwarded == tt.skipped {
				t.Errorf("forwarded %v, skipped %v", forwarded, tt.skipped)
			}
			if logged := strings.Contains(logs.String(), "stale heartbeat skipped"); logged != tt.skipped {
				t.Errorf("debug log %q", logs.String())
			}
			if tt.skipped && !strings.Contains(logs.String(), "correlation_id=") {
				t.Errorf("skip logged without the correlation id: %q", logs.String())
			}
		})
	}
}

func TestStaleHeartbeatsInABatch(t *testing.T) {
	s := set(t)
	paid := payloadTime(t)
	now := paid.Add(time.Hour)
	fresh, stale := now.Add(-time.Second), now.Add(-window-time.Second)
	bad := []byte(`{"not":"an envelope"}`)
	tests := []struct {
		name     string
		values   [][]byte
		stamps   []time.Time
		records  int
		rejected []int
		skipped  float64
	}{
		{"stale ones left out of the records", [][]byte{s.Heartbeat().Value, s.Heartbeat().Value, s.Heartbeat().Value},
			[]time.Time{fresh, stale, fresh}, 2, nil, 1},
		{"all stale: nothing to send", [][]byte{s.Heartbeat().Value, s.Heartbeat().Value},
			[]time.Time{stale, stale}, 0, nil, 2},
		{"stale ones are done, an invalid one rejected", [][]byte{s.Heartbeat().Value, s.Heartbeat().Value, bad, s.Heartbeat().Value},
			[]time.Time{fresh, stale, fresh, fresh}, 2, []int{2}, 1},
		// Skipped before decoding: a stale malformed record is done, not
		// rejected.
		{"stale and malformed is done", [][]byte{bad, s.Heartbeat().Value},
			[]time.Time{stale, fresh}, 1, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(nil)
			h := NewHandler(map[string]string{"hb": topics.NodeHeartbeat}, "reducer-input", "test",
				Limits{MaxBytes: 1 << 20, HeartbeatWindow: window}, m)
			h.now = func() time.Time { return now }
			// Debug on: the forwarded records are logged by index.
			ctx := observability.WithCorrelation(context.Background(),
				slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelDebug})), uuid.New())
			var msgs []*bus.Message
			for i, v := range tt.values {
				msgs = append(msgs, &bus.Message{Topic: "hb", Offset: int64(i), Value: v, Timestamp: tt.stamps[i]})
			}
			out, err := h.Handle(ctx, msgs)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := rejected(t, out, len(msgs)); !slices.Equal(got, tt.rejected) {
				t.Errorf("rejected %v, want %v", got, tt.rejected)
			}
			if len(out.Records) != tt.records {
				t.Errorf("%d records, want %d", len(out.Records), tt.records)
			}
			if got := testutil.ToFloat64(m.HeartbeatsSkipped.WithLabelValues(SkipStale)); got != tt.skipped {
				t.Errorf("skipped %v, want %v", got, tt.skipped)
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
