package ingress

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// sends records the records of every Send call; with fail set every call
// fails.
type sends struct {
	calls [][]*sarama.ProducerMessage
	fail  error
}

func (s *sends) Send(_ context.Context, msgs ...*sarama.ProducerMessage) error {
	if s.fail != nil {
		return s.fail
	}
	s.calls = append(s.calls, msgs)
	return nil
}

func TestHandleBatch(t *testing.T) {
	s := set(t)
	hb := func() []byte { return s.Heartbeat().Value }
	bad := []byte(`{"not":"an envelope"}`)
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka"}, "broker down", nil)
	tests := []struct {
		name      string
		values    [][]byte
		fail      error
		wantSends []int // records per Send call
		wantDone  int   // -1: nil error; else BatchError.Done
		wantPlain bool  // a plain (non-batch) error
		accepted  float64
	}{
		{"all valid: one send", [][]byte{hb(), hb(), hb()}, nil, []int{3}, -1, false, 3},
		{"invalid in the middle: prefix sent, culprit named", [][]byte{hb(), hb(), bad, hb()}, nil, []int{2}, 2, false, 2},
		{"invalid first: nothing sent", [][]byte{bad, hb()}, nil, nil, 0, false, 0},
		{"publish fails: plain error for the batch", [][]byte{hb(), hb()}, down, nil, -1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snd := &sends{fail: tt.fail}
			m := NewMetrics(nil)
			h := NewHandler(map[string]string{"hb-topic": topics.NodeHeartbeat}, "reducer-input", "test", Limits{MaxBytes: 1 << 20}, snd, m)
			h.now = func() time.Time { return now }
			var msgs []*bus.Message
			for i, v := range tt.values {
				msgs = append(msgs, &bus.Message{Topic: "hb-topic", Offset: int64(i), Value: v})
			}
			err := h.HandleBatch(context.Background(), msgs)
			var be *bus.BatchError
			switch {
			case tt.wantPlain:
				if err == nil || errors.As(err, &be) {
					t.Fatalf("error %v, want a plain error", err)
				}
				if !infraerr.Retriable(err) {
					t.Errorf("publish failure %v is not retriable", err)
				}
			case tt.wantDone < 0:
				if err != nil {
					t.Fatalf("error %v", err)
				}
			default:
				if !errors.As(err, &be) || be.Done != tt.wantDone || !infraerr.IsContent(be.Err) {
					t.Fatalf("error %v, want a BatchError at %d with a content error", err, tt.wantDone)
				}
			}
			if len(snd.calls) != len(tt.wantSends) {
				t.Fatalf("%d sends, want %d", len(snd.calls), len(tt.wantSends))
			}
			for i, c := range snd.calls {
				if len(c) != tt.wantSends[i] {
					t.Fatalf("send %d carried %d records, want %d", i, len(c), tt.wantSends[i])
				}
				for j, pm := range c {
					if pm.Topic != "reducer-input" || pm.Key == nil {
						t.Fatalf("record %d: topic %s key %v", j, pm.Topic, pm.Key)
					}
				}
			}
			if got := testutil.ToFloat64(m.Messages.WithLabelValues(topics.NodeHeartbeat, "accepted", "")); got != tt.accepted {
				t.Errorf("accepted counter %v, want %v", got, tt.accepted)
			}
		})
	}
}
