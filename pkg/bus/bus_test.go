package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/retry"
)

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, m *Message) error {
				order = append(order, name)
				return next(ctx, m)
			}
		}
	}
	h := Chain(func(context.Context, *Message) error { order = append(order, "h"); return nil }, mw("a"), mw("b"))
	if err := h(context.Background(), &Message{}); err != nil {
		t.Fatal(err)
	}
	if got := len(order); got != 3 || order[0] != "a" || order[1] != "b" || order[2] != "h" {
		t.Fatalf("order = %v, want [a b h]", order)
	}
}

func TestFromConsumerMessageCorrelation(t *testing.T) {
	body := uuid.MustParse("b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d")
	header := uuid.MustParse("e1d2c3b4-a5f6-4789-9abc-def012345678")
	hdr := []*sarama.RecordHeader{{Key: []byte("correlation_id"), Value: []byte(header.String())}}
	tests := []struct {
		name    string
		value   string
		headers []*sarama.RecordHeader
		want    uuid.UUID
	}{
		{"body wins over header", `{"payload":{},"correlation_id":"` + body.String() + `"}`, hdr, body},
		{"header when body has none", `{"payload":{}}`, hdr, header},
		{"header when body is garbage", "\x00\x01not json", hdr, header},
		{"header when body id is not a uuid", `{"correlation_id":"abc"}`, hdr, header},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := FromConsumerMessage(&sarama.ConsumerMessage{Value: []byte(tt.value), Headers: tt.headers})
			if m.CorrelationID != tt.want {
				t.Fatalf("correlation = %v, want %v", m.CorrelationID, tt.want)
			}
		})
	}
	m := FromConsumerMessage(&sarama.ConsumerMessage{Value: []byte(`{}`)})
	if m.CorrelationID == uuid.Nil {
		t.Fatal("no correlation id generated when none is present")
	}
}

type recordingDLQ struct {
	causes []error
	fail   int // fail this many publishes first
}

func (r *recordingDLQ) DeadLetter(_ context.Context, _ *Message, cause error) error {
	if r.fail > 0 {
		r.fail--
		return errors.New("broker down")
	}
	r.causes = append(r.causes, cause)
	return nil
}

func fastPolicy() retry.Policy {
	return retry.Policy{MaxAttempts: 3, Initial: 1, Max: 1, Multiplier: 2}
}

func TestStandardChainOutcomes(t *testing.T) {
	transient := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "db"}, "refused", nil)
	content := infraerr.Content("payload.node_id", "not a UUID")
	tests := []struct {
		name      string
		fn        func(calls int) error
		wantCalls int
		wantDLQ   bool
		wantKind  infraerr.Kind
	}{
		{"success", func(int) error { return nil }, 1, false, 0},
		{"transient then success", func(c int) error {
			if c < 2 {
				return transient
			}
			return nil
		}, 2, false, 0},
		{"content error goes straight to DLQ", func(int) error { return content }, 1, true, infraerr.KindContent},
		{"retries exhausted go to DLQ", func(int) error { return transient }, 3, true, infraerr.KindConnection},
		{"panic goes to DLQ without retry", func(int) error { panic("boom") }, 1, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			dl := &recordingDLQ{fail: 1}
			m := NewMetrics(nil)
			h := Standard(func(context.Context, *Message) error { calls++; return tt.fn(calls) }, discardLogger(), m, fastPolicy(), dl)
			msg := &Message{Topic: "onex.evt.platform.node-heartbeat.v1", CorrelationID: uuid.New()}
			if err := h(context.Background(), msg); err != nil {
				t.Fatalf("chain returned %v; a dead-lettered or handled message must return nil", err)
			}
			if calls != tt.wantCalls {
				t.Errorf("handler calls = %d, want %d", calls, tt.wantCalls)
			}
			if got := len(dl.causes) == 1; got != tt.wantDLQ || msg.DeadLettered() != tt.wantDLQ {
				t.Fatalf("dead-lettered = %v (%d records), want %v", msg.DeadLettered(), len(dl.causes), tt.wantDLQ)
			}
			if tt.wantDLQ && tt.wantKind >= 0 {
				if k, _ := infraerr.KindOf(dl.causes[0]); k != tt.wantKind {
					t.Errorf("dead-letter cause kind = %v, want %v", k, tt.wantKind)
				}
			}
		})
	}
}

func TestRetryStopsOnShutdown(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	ctx := withStop(context.Background(), stop)
	dl := &recordingDLQ{}
	slow := retry.Policy{MaxAttempts: 5, Initial: 1 << 40, Max: 1 << 40, Multiplier: 2}
	h := Standard(func(context.Context, *Message) error {
		return infraerr.New(infraerr.KindTimeout, infraerr.Context{}, "slow", nil)
	}, discardLogger(), NewMetrics(nil), slow, dl)
	err := h(ctx, &Message{Topic: "t"})
	if !errors.Is(err, retry.ErrStopped) {
		t.Fatalf("err = %v, want retry.ErrStopped so the offset stays uncommitted", err)
	}
	if len(dl.causes) != 0 {
		t.Fatal("a message whose retry was interrupted by shutdown must not be dead-lettered")
	}
}
