package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

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
		{"header for a protobuf body", `{"payload":{},"correlation_id":"` + body.String() + `"}`,
			append([]*sarama.RecordHeader{{Key: []byte("content_type"), Value: []byte("application/x-protobuf; messageType=onex.fleet.v1.Intent")}}, hdr...), header},
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
			m := NewMetrics(nil).Handler("ingress")
			h := Standard(func(context.Context, *Message) error { calls++; return tt.fn(calls) }, discardLogger(), m, fastPolicy(), dl)
			topic := "onex.evt.platform.node-heartbeat.v1"
			msg := &Message{Topic: topic, CorrelationID: uuid.New()}
			if err := h(context.Background(), msg); err != nil {
				t.Fatalf("chain returned %v; a dead-lettered or handled message must return nil", err)
			}
			if calls != tt.wantCalls {
				t.Errorf("handler calls = %d, want %d", calls, tt.wantCalls)
			}
			if got := len(dl.causes) == 1; got != tt.wantDLQ || msg.DeadLettered() != tt.wantDLQ {
				t.Fatalf("dead-lettered = %v (%d records), want %v", msg.DeadLettered(), len(dl.causes), tt.wantDLQ)
			}
			handled, dead := testutil.ToFloat64(m.Consumed.WithLabelValues(topic, "handled")), testutil.ToFloat64(m.Consumed.WithLabelValues(topic, "dead_lettered"))
			if tt.wantDLQ && (handled != 0 || dead != 1) || !tt.wantDLQ && (handled != 1 || dead != 0) {
				t.Errorf("onex_messages_consumed_total handled=%v dead_lettered=%v, want the message counted once under its outcome", handled, dead)
			}
			if n := histogramCount(t, m.Duration.WithLabelValues(topic, "ingress")); n != 1 {
				t.Errorf("onex_handler_duration_seconds{handler=ingress} has %d observations, want 1", n)
			}
			if r := testutil.ToFloat64(m.Retries.WithLabelValues(topic)); int(r) != tt.wantCalls-1 {
				t.Errorf("onex_handler_retries_total = %v, want %d", r, tt.wantCalls-1)
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

func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var d dto.Metric
	if err := o.(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

type fakeClaim struct {
	topic   string
	part    int32
	initial int64
	hwm     atomic.Int64
}

func (c *fakeClaim) Topic() string              { return c.topic }
func (c *fakeClaim) Partition() int32           { return c.part }
func (c *fakeClaim) InitialOffset() int64       { return c.initial }
func (c *fakeClaim) HighWaterMarkOffset() int64 { return c.hwm.Load() }

// The lag is the high-water mark minus the next offset to handle, read at
// scrape time; unknown positions are not reported, and a closed claim's
// series goes away.
func TestLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	committed := &fakeClaim{topic: "onex.evt.platform.node-heartbeat.v1", part: 2, initial: 10}
	fresh := &fakeClaim{topic: "onex.evt.platform.node-heartbeat.v1", part: 3, initial: sarama.OffsetOldest}
	committed.hwm.Store(15)
	fresh.hwm.Store(4)
	a, b := m.Track("g1", committed), m.Track("g1", fresh)
	const head = "# HELP onex_consumer_lag Records in the partition after the group's position (high-water mark minus the next offset to handle), per claimed partition.\n# TYPE onex_consumer_lag gauge\n"
	check := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(head+want), "onex_consumer_lag"); err != nil {
			t.Fatal(err)
		}
	}
	check(`onex_consumer_lag{group="g1",partition="2",topic="onex.evt.platform.node-heartbeat.v1"} 5` + "\n")
	b.Taken(1) // the fresh group's first record: offsets 1..3 still to do
	a.Taken(10)
	a.Done(10)
	check(`onex_consumer_lag{group="g1",partition="2",topic="onex.evt.platform.node-heartbeat.v1"} 4
onex_consumer_lag{group="g1",partition="3",topic="onex.evt.platform.node-heartbeat.v1"} 3
`)
	a.Done(14)
	b.Close()
	check(`onex_consumer_lag{group="g1",partition="2",topic="onex.evt.platform.node-heartbeat.v1"} 0` + "\n")
	a.Done(20) // the fetcher has not seen the new high-water mark yet: never negative
	check(`onex_consumer_lag{group="g1",partition="2",topic="onex.evt.platform.node-heartbeat.v1"} 0` + "\n")
	a.Close()
	if n := testutil.CollectAndCount(m.Lag); n != 0 {
		t.Fatalf("%d lag series after every claim closed", n)
	}
	var nilM *Metrics
	p := nilM.Track("g", committed) // services without metrics pass nil
	p.Taken(1)
	p.Done(1)
	p.Close()
}
