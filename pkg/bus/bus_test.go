package bus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/omninode/onex-fleet/pkg/retry"
)

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
	mu     sync.Mutex
	causes []error
	values []string
	fail   int // fail this many publishes first
}

func (r *recordingDLQ) DeadLetter(_ context.Context, m *Message, cause error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("broker down")
	}
	r.causes = append(r.causes, cause)
	r.values = append(r.values, string(m.Value))
	return nil
}

func fastPolicy() retry.Policy {
	return retry.Policy{MaxAttempts: 3, Initial: 1, Max: 1, Multiplier: 2}
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
