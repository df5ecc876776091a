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
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
)

// rejected returns the indices of the messages out rejects, failing the
// test on an outcome that is neither done nor a content rejection.
func rejected(t *testing.T, out bus.Output, n int) []int {
	t.Helper()
	if out.Outcomes != nil && len(out.Outcomes) != n {
		t.Fatalf("%d outcomes for %d messages", len(out.Outcomes), n)
	}
	var idx []int
	for i, o := range out.Outcomes {
		switch o.Verdict {
		case bus.Done:
		case bus.DeadLetter:
			if !infraerr.IsContent(o.Err) {
				t.Errorf("message %d rejected with %v, want a content error", i, o.Err)
			}
			idx = append(idx, i)
		default:
			t.Errorf("message %d: outcome %s (%v)", i, o.Verdict, o.Err)
		}
	}
	return idx
}

// keys are the record keys of out, in order.
func keys(t *testing.T, out bus.Output) []string {
	t.Helper()
	var ks []string
	for _, pm := range out.Records {
		k, err := pm.Key.Encode()
		if err != nil || pm.Topic != "reducer-input" {
			t.Fatalf("record topic %s key %q (%v)", pm.Topic, k, err)
		}
		ks = append(ks, string(k))
	}
	return ks
}

// TestHandle: the valid records of a batch come back as reducer inputs
// keyed by their node, in the batch's order; an invalid one is rejected,
// counted and logged, and the batch goes on after it.
func TestHandle(t *testing.T) {
	s := set(t)
	bad := fixtures.Record{Value: []byte(`{"not":"an envelope"}`)}
	hb := func() fixtures.Record { return s.Heartbeat() }
	tests := []struct {
		name     string
		records  []fixtures.Record
		rejected []int
	}{
		{"all valid: every record, in order", []fixtures.Record{hb(), hb(), hb()}, nil},
		{"invalid in the middle: rejected, the rest forwarded", []fixtures.Record{hb(), hb(), bad, hb()}, []int{2}},
		{"invalid first", []fixtures.Record{bad, hb()}, []int{0}},
		{"all invalid: nothing to send", []fixtures.Record{bad, bad}, []int{0, 1}},
		{"a batch of one", []fixtures.Record{hb()}, nil},
		{"an empty batch", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(nil)
			h := NewHandler(map[string]string{"hb-topic": topics.NodeHeartbeat}, "reducer-input", "test", Limits{MaxBytes: 1 << 20}, m)
			h.now = func() time.Time { return now }
			var logs bytes.Buffer
			ctx := observability.WithLogger(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
			var msgs []*bus.Message
			var want []string
			for i, r := range tt.records {
				msgs = append(msgs, &bus.Message{Topic: "hb-topic", Offset: int64(i), Value: r.Value, CorrelationID: uuid.New()})
				if r.NodeID != uuid.Nil {
					want = append(want, r.NodeID.String())
				}
			}
			out, err := h.Handle(ctx, msgs)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := rejected(t, out, len(msgs)); !slices.Equal(got, tt.rejected) {
				t.Errorf("rejected %v, want %v", got, tt.rejected)
			}
			if got := keys(t, out); !slices.Equal(got, want) {
				t.Errorf("records keyed %v, want %v", got, want)
			}
			if got := testutil.ToFloat64(m.Messages.WithLabelValues(topics.NodeHeartbeat, "accepted", "")); got != float64(len(want)) {
				t.Errorf("accepted counter %v, want %d", got, len(want))
			}
			if got := testutil.ToFloat64(m.Messages.WithLabelValues(topics.NodeHeartbeat, "rejected", ReasonInvalidEnvelope)); got != float64(len(tt.rejected)) {
				t.Errorf("rejected counter %v, want %d", got, len(tt.rejected))
			}
			if n := strings.Count(logs.String(), "node message rejected"); n != len(tt.rejected) {
				t.Errorf("%d rejections logged, want %d: %s", n, len(tt.rejected), logs.String())
			}
			if len(tt.rejected) > 0 && len(msgs) > 1 && !strings.Contains(logs.String(), "correlation_id="+msgs[tt.rejected[0]].CorrelationID.String()) {
				t.Errorf("rejection logged without its message's correlation id: %s", logs.String())
			}
		})
	}
}

// Handing a batch again (a failed send, a redelivery) returns the same
// records: the handler keeps nothing between calls but counts.
func TestHandleAgain(t *testing.T) {
	s := set(t)
	h := NewHandler(map[string]string{"hb": topics.NodeHeartbeat}, "reducer-input", "test", Limits{MaxBytes: 1 << 20}, NewMetrics(nil))
	h.now = func() time.Time { return now }
	msgs := []*bus.Message{{Topic: "hb", Value: s.Heartbeat().Value}, {Topic: "hb", Offset: 1, Value: s.Heartbeat().Value}}
	first, err := h.Handle(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.Handle(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Records) != 2 || !slices.Equal(keys(t, first), keys(t, again)) {
		t.Fatalf("records %v then %v", keys(t, first), keys(t, again))
	}
	for i := range first.Records {
		a, _ := first.Records[i].Value.Encode()
		b, _ := again.Records[i].Value.Encode()
		if !bytes.Equal(a, b) {
			t.Errorf("record %d differs when handled again", i)
		}
	}
}
