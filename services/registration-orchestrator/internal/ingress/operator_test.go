package ingress

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

type partitions struct {
	parts []int32
	err   error
}

func (p partitions) Partitions(string) ([]int32, error) { return p.parts, p.err }

func TestOperatorHandler(t *testing.T) {
	node := uuid.New()
	state, older := "active", int64(3600)
	deregister := &operator.Command{CommandID: uuid.New(), Command: operator.Deregister, NodeID: &node, RequestedBy: "ops",
		RequestedAt: pipeline.T(now)}
	evict := &operator.Command{CommandID: uuid.New(), Command: operator.Evict, State: &state, OlderThanSeconds: &older,
		Reason: "cleanup", RequestedBy: "ops", RequestedAt: pipeline.T(now)}
	encode := func(c *operator.Command) []byte {
		b, err := operator.Encode(c, uuid.New())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka"}, "broker down", nil)
	tests := []struct {
		name        string
		value       []byte
		parts       partitions
		fail        error
		wantErr     string // "content", "retriable" or ""
		keyed       int    // records sent through the keyed sender
		partitioned []int32
		label       string // counted command label
		outcome     string
	}{
		{"deregister: keyed by the node", encode(deregister), partitions{parts: []int32{0, 1, 2}}, nil, "", 1, nil, "deregister", "accepted"},
		{"evict: one copy per partition", encode(evict), partitions{parts: []int32{0, 1, 2, 3}}, nil, "", 0, []int32{0, 1, 2, 3}, "evict", "accepted"},
		{"not an envelope", []byte(`{"command": "evict"}`), partitions{}, nil, "content", 0, nil, "unknown", "invalid"},
		{"empty", nil, partitions{}, nil, "content", 0, nil, "unknown", "invalid"},
		{"oversized", make([]byte, 4097), partitions{}, nil, "content", 0, nil, "unknown", "invalid"},
		{"publish fails: retriable, not counted", encode(deregister), partitions{}, down, "retriable", 0, nil, "", ""},
		{"partitions unknown: retriable", encode(evict), partitions{err: down}, nil, "retriable", 0, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyed, parted := &sends{fail: tt.fail}, &sends{fail: tt.fail}
			m := NewMetrics(nil)
			h := NewOperatorHandler(OperatorConfig{ReducerInput: "reducer-input", Source: "test", MaxBytes: 4096,
				Keyed: keyed, Partitioned: parted, Partitions: tt.parts, Metrics: m})
			h.now = func() time.Time { return now }
			err := h.Handle(context.Background(), &bus.Message{Topic: "admin-topic", Value: tt.value, CorrelationID: uuid.New()})
			switch tt.wantErr {
			case "":
				if err != nil {
					t.Fatalf("error %v", err)
				}
			case "content":
				if !infraerr.IsContent(err) {
					t.Fatalf("error %v, want a content error", err)
				}
			case "retriable":
				if !infraerr.Retriable(err) {
					t.Fatalf("error %v, want a retriable error", err)
				}
			}
			var sent int
			for _, c := range keyed.calls {
				for _, pm := range c {
					sent++
					if k, _ := pm.Key.Encode(); string(k) != node.String() || pm.Topic != "reducer-input" {
						t.Errorf("keyed record topic %s key %s", pm.Topic, k)
					}
					checkLine(t, pm, tt.value)
				}
			}
			if sent != tt.keyed {
				t.Errorf("%d keyed records, want %d", sent, tt.keyed)
			}
			var got []int32
			for _, c := range parted.calls {
				if len(c) > 0 && len(parted.calls) != 1 {
					t.Errorf("%d sends for an evict, want one", len(parted.calls))
				}
				for _, pm := range c {
					got = append(got, pm.Partition)
					if pm.Key != nil {
						t.Errorf("evict copy keyed")
					}
					checkLine(t, pm, tt.value)
				}
			}
			if !slices.Equal(got, tt.partitioned) {
				t.Errorf("partitioned copies on %v, want %v", got, tt.partitioned)
			}
			if tt.label != "" {
				if n := testutil.ToFloat64(m.OperatorCommands.WithLabelValues(tt.label, tt.outcome)); n != 1 {
					t.Errorf("onex_orchestrator_operator_commands_total{%s,%s} = %v, want 1", tt.label, tt.outcome, n)
				}
			}
			if tt.wantErr == "retriable" {
				if n := testutil.CollectAndCount(m.OperatorCommands); n != 0 {
					t.Errorf("%d series counted for a failed publish, want none", n)
				}
			}
		})
	}
}

// checkLine checks a reducer input record: the admin topic, the receive
// time, the command byte for byte.
func checkLine(t *testing.T, pm *sarama.ProducerMessage, value []byte) {
	t.Helper()
	ri := sentInput(t, pm)
	if ri.Topic != topics.RegistrationAdmin || !ri.ReceivedAt.Equal(now) || string(ri.Value) != string(value) {
		t.Errorf("reducer input %+v", ri)
	}
}
